"""L2: a planner that may *choose* a catalogue runbook when no L1 rule fits (off by default).

Why so narrow: a language model is never allowed to write commands. It sees only the scrubbed,
structured check result and the list of eligible runbooks (id, name, description, parameter
schemas), and must answer one JSON object::

    {"runbook_id": "RB-…", "params": {...}, "confidence": 0-100, "reason": "…"}

The answer is accepted only if it names an eligible runbook, its parameters pass the manifest's
schema, and the confidence reaches the site's threshold (percent, ``healing.l2_min_confidence``;
a fraction 0..1 is read as a fraction of 100). Anything else — invalid JSON, an unknown or
ineligible runbook, bad parameters, a low confidence, an HTTP error — is a refusal that sends the
issue to L3. Every decision (accepted or not) carries the model name and the prompt's SHA-256 so
the evidence shows exactly what was asked.

One real provider: an OpenAI-compatible ``/chat/completions`` client over httpx, with the key
read from a file and never logged, proxies from the environment ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from osiris_core import pattern, phi
from osiris_core.catalog import Runbook
from osiris_core.errors import SchemaError

SYSTEM_PROMPT = (
    "You are the L2 planner of a HIPAA compliance agent. You receive one drift finding from a "
    "managed host and the list of runbooks that are eligible to fix it. You may only choose one "
    "runbook from that list, with parameters that fit its schema, or none. Never invent "
    "commands. Answer with exactly one JSON object and nothing else: "
    '{"runbook_id": "<eligible id or null>", "params": {}, "confidence": <0-100>, '
    '"reason": "<one sentence>"}'
)
MAX_ANSWER = 8192


@dataclass
class L2Decision:
    """What the planner decided; ``accepted`` means it may run (still through the guards)."""

    accepted: bool
    model: str
    prompt_sha256: str
    runbook_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    confidence: int | None = None
    reason: str = ""
    refusal: str | None = None
    answer_sha256: str | None = None

    def record(self, finding: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The decision as evidence data (no prompt text, no key, no raw answer).

        With the ``finding`` an accepted plan also carries its normalised pattern signature
        (``osiris_core.pattern``): the server's learning loop counts outcomes per pattern across
        sites, and the signature holds the shape of the observed state, never its values."""
        out = {
            "model": self.model,
            "prompt_sha256": self.prompt_sha256,
            "answer_sha256": self.answer_sha256,
            "accepted": self.accepted,
            "runbook_id": self.runbook_id,
            "confidence": self.confidence,
            "reason": phi.scrub(self.reason)[:300],
            "refusal": self.refusal,
        }
        if finding is not None and self.accepted and self.runbook_id is not None:
            out["pattern"] = pattern.signature(
                finding.get("check", ""), finding.get("runbook_id", ""),
                finding.get("observed") or {}, self.runbook_id, self.params,
            )  # fmt: skip
        return out


class L2Planner(Protocol):
    model: str
    min_confidence: int

    def plan(self, finding: Mapping[str, Any], eligible: Sequence[Runbook]) -> L2Decision: ...


def runbook_brief(rb: Runbook) -> dict[str, Any]:
    """What the model may know about a runbook: its contract, never its script."""
    params: dict[str, Any] = {}
    for name, p in rb.params.items():
        spec: dict[str, Any] = {"type": p.type, "default": p.default, "description": p.description}
        if p.pattern is not None:
            spec["pattern"] = p.pattern
        if p.min is not None:
            spec["min"] = p.min
        if p.max is not None:
            spec["max"] = p.max
        spec["bound"] = p.describe_bound()
        params[name] = spec
    return {
        "id": rb.id,
        "name": rb.name,
        "description": rb.description,
        "what_it_changes": rb.what_it_changes,
        "disruptive": rb.disruptive,
        "params": params,
    }


def build_messages(
    finding: Mapping[str, Any], eligible: Sequence[Runbook]
) -> tuple[list[dict[str, str]], str]:
    """Chat messages and the SHA-256 of their canonical text (the prompt hash in evidence)."""
    data = {
        "finding": phi.scrub_obj(
            {k: finding.get(k) for k in ("check", "runbook_id", "status", "observed", "expected")}
        ),
        "eligible_runbooks": [runbook_brief(rb) for rb in eligible],
    }
    user = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]
    blob = json.dumps(messages, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return messages, hashlib.sha256(blob).hexdigest()


def _confidence(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float) and 0 <= value <= 1:
        value = value * 100
    if not 0 <= value <= 100:
        return None
    return int(round(value))


def judge_answer(
    content: str,
    eligible: Sequence[Runbook],
    *,
    model: str,
    prompt_sha256: str,
    min_confidence: int,
) -> L2Decision:
    """Validate the model's text; a refusal says why. Pure: tests call it directly too."""
    d = L2Decision(accepted=False, model=model, prompt_sha256=prompt_sha256)
    d.answer_sha256 = hashlib.sha256(content.encode("utf-8", "replace")).hexdigest()
    text = content.strip()
    if text.startswith("```"):  # tolerate a fenced block, nothing else
        text = text.strip("`").removeprefix("json").strip()
    if len(text) > MAX_ANSWER:
        d.refusal = "answer too long"
        return d
    try:
        obj = json.loads(text)
    except ValueError:
        d.refusal = "answer is not JSON"
        return d
    if not isinstance(obj, dict):
        d.refusal = "answer is not a JSON object"
        return d
    reason = obj.get("reason")
    d.reason = reason[:500] if isinstance(reason, str) else ""
    d.confidence = _confidence(obj.get("confidence"))
    rid = obj.get("runbook_id")
    if rid is None:
        d.refusal = "the planner chose no runbook"
        return d
    by_id = {rb.id: rb for rb in eligible}
    if not isinstance(rid, str) or rid not in by_id:
        d.refusal = f"runbook {str(rid)[:64]!r} is not eligible for this finding"
        return d
    d.runbook_id = rid
    params = obj.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        d.refusal = "params is not an object"
        return d
    try:
        # Judged by the catalogue's validator; only the values the model named are kept, so
        # the site's own values (and the signed policy's trust-redirecting ones) still apply.
        by_id[rid].validate_params(params)
        d.params = dict(params)
    except SchemaError as exc:
        d.refusal = f"invalid params: {exc}"
        return d
    if d.confidence is None:
        d.refusal = "confidence missing or not a number in 0..100"
        return d
    if d.confidence < min_confidence:
        d.refusal = f"confidence {d.confidence} is below the threshold {min_confidence}"
        return d
    d.accepted = True
    return d


class OpenAIChatPlanner:
    """OpenAI-compatible chat-completions client (``POST {base_url}/chat/completions``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        key_file: str | None = None,
        min_confidence: int = 70,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.key_file = key_file
        self.min_confidence = min_confidence
        self.timeout_s = timeout_s

    @classmethod
    def from_config(cls, healing: Any) -> OpenAIChatPlanner | None:
        """The planner for an ``AgentConfig.healing`` section, or ``None`` when L2 is off."""
        if not healing.l2_enabled or not healing.l2_base_url or not healing.l2_model:
            return None
        return cls(
            healing.l2_base_url,
            healing.l2_model,
            key_file=healing.l2_key_file,
            min_confidence=healing.l2_min_confidence,
        )

    def _key(self) -> str | None:
        if not self.key_file:
            return None
        return Path(self.key_file).read_text(encoding="utf-8").strip() or None

    def plan(self, finding: Mapping[str, Any], eligible: Sequence[Runbook]) -> L2Decision:
        import httpx  # imported on use: an agent with L2 off never loads it for this

        messages, prompt_hash = build_messages(finding, eligible)
        refused = L2Decision(accepted=False, model=self.model, prompt_sha256=prompt_hash)
        if not eligible:
            refused.refusal = "no eligible runbook"
            return refused
        headers = {"Content-Type": "application/json"}
        try:
            key = self._key()
        except OSError:
            refused.refusal = "the L2 key file cannot be read"
            return refused
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": 500,
            "response_format": {"type": "json_object"},
        }
        try:
            with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
                resp = client.post(f"{self.base_url}/chat/completions", json=body, headers=headers)
        except httpx.HTTPError as exc:
            refused.refusal = f"L2 endpoint unreachable ({type(exc).__name__})"
            return refused
        if resp.status_code != 200:
            refused.refusal = f"L2 endpoint answered HTTP {resp.status_code}"
            return refused
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            refused.refusal = "L2 endpoint answer is not a chat completion"
            return refused
        if not isinstance(content, str):
            refused.refusal = "L2 completion has no text content"
            return refused
        return judge_answer(
            content,
            eligible,
            model=self.model,
            prompt_sha256=prompt_hash,
            min_confidence=self.min_confidence,
        )
