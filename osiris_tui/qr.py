"""A small QR code encoder (ISO/IEC 18004): byte mode, versions 1-6, error correction level L.

Why our own: a claim code must be scannable from a technician's terminal, no QR library is a
dependency, and the subset we need (≤ 134 bytes) is a few dozen lines. Rendered with Unicode
half blocks so one text row holds two module rows (fits a claim code in ~15 terminal lines).
"""

from __future__ import annotations

# (total codewords, ec codewords per block, blocks) for ECC level L, versions 1..6
_L_BLOCKS = {1: (26, 7, 1), 2: (44, 10, 1), 3: (70, 15, 1), 4: (100, 20, 1), 5: (134, 26, 1),
             6: (172, 18, 2)}  # fmt: skip
_ALIGN = {1: [], 2: [6, 18], 3: [6, 22], 4: [6, 26], 5: [6, 30], 6: [6, 34]}
MAX_BYTES = 134

# GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1
_EXP = [0] * 512
_LOG = [0] * 256
_v = 1
for _i in range(255):
    _EXP[_i] = _v
    _LOG[_v] = _i
    _v <<= 1
    if _v & 0x100:
        _v ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _gmul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


def _generator(n: int) -> list[int]:
    g = [1]
    for i in range(n):
        nxt = [0] * (len(g) + 1)
        for j, c in enumerate(g):
            nxt[j] ^= c
            nxt[j + 1] ^= _gmul(c, _EXP[i])
        g = nxt
    return g


def rs_ecc(data: list[int], n: int) -> list[int]:
    """Reed-Solomon remainder: the n error-correction codewords for ``data``."""
    gen = _generator(n)
    rem = list(data) + [0] * n
    for i in range(len(data)):
        c = rem[i]
        if c:
            for j in range(1, len(gen)):
                rem[i + j] ^= _gmul(gen[j], c)
    return rem[len(data) :]


def _version_for(n: int) -> int:
    for v, (total, ec, blocks) in _L_BLOCKS.items():
        if n + 2 <= total - ec * blocks:  # 4-bit mode + 8-bit count ≤ 2 bytes of overhead
            return v
    raise ValueError(f"too long for a version 1-6 QR code ({n} > {MAX_BYTES} bytes)")


def codewords(data: bytes, version: int) -> list[int]:
    """Data codewords (mode, count, data, terminator, padding) + interleaved ECC."""
    total, ec, blocks = _L_BLOCKS[version]
    capacity = total - ec * blocks
    bits: list[int] = [0, 1, 0, 0] + [(len(data) >> i) & 1 for i in range(7, -1, -1)]
    for b in data:
        bits += [(b >> i) & 1 for i in range(7, -1, -1)]
    bits += [0] * min(4, capacity * 8 - len(bits))
    bits += [0] * (-len(bits) % 8)
    out = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)]
    pad = [0xEC, 0x11]
    while len(out) < capacity:
        out.append(pad[(len(out) - len(bits) // 8) % 2])
    size = capacity // blocks
    chunks = [out[i * size : (i + 1) * size] for i in range(blocks)]
    eccs = [rs_ecc(c, ec) for c in chunks]
    inter = [c[i] for i in range(size) for c in chunks]
    inter += [e[i] for i in range(ec) for e in eccs]
    return inter


def format_bits(mask: int) -> int:
    """15 format bits for ECC level L (binary 01) and a mask, BCH-protected and XOR-masked."""
    data = (0b01 << 3) | mask
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return ((data << 10) | rem) ^ 0x5412


_MASKS = [
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
]


class QR:
    """A finished symbol: ``modules[y][x]`` True = dark."""

    def __init__(self, data: bytes, mask: int | None = None) -> None:
        self.version = _version_for(len(data))
        self.size = 17 + 4 * self.version
        n = self.size
        self.modules = [[False] * n for _ in range(n)]
        self.function = [[False] * n for _ in range(n)]
        self._draw_function_patterns()
        cw = codewords(data, self.version)
        self._draw_codewords(cw)
        if mask is None:
            best = None
            for m in range(8):
                self._apply_mask(m)
                self._draw_format(m)
                score = self._penalty()
                if best is None or score < best[0]:
                    best = (score, m)
                self._apply_mask(m)  # undo (XOR)
            mask = best[1]  # type: ignore[index]
        self.mask = mask
        self._apply_mask(mask)
        self._draw_format(mask)

    # ---- drawing

    def _set(self, x: int, y: int, dark: bool) -> None:
        self.modules[y][x] = dark
        self.function[y][x] = True

    def _draw_function_patterns(self) -> None:
        n = self.size
        for i in range(n):
            self._set(6, i, i % 2 == 0)
            self._set(i, 6, i % 2 == 0)
        for cx, cy in ((3, 3), (n - 4, 3), (3, n - 4)):
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    x, y = cx + dx, cy + dy
                    if 0 <= x < n and 0 <= y < n:
                        d = max(abs(dx), abs(dy))
                        self._set(x, y, d not in (2, 4))
        pos = _ALIGN[self.version]
        last = len(pos) - 1
        for i, ax in enumerate(pos):
            for j, ay in enumerate(pos):
                if (i == 0 and j == 0) or (i == 0 and j == last) or (i == last and j == 0):
                    continue
                for dy in range(-2, 3):
                    for dx in range(-2, 3):
                        self._set(ax + dx, ay + dy, max(abs(dx), abs(dy)) != 1)
        self._draw_format(0)  # reserve the format areas (redrawn later)

    def _draw_format(self, mask: int) -> None:
        n = self.size
        bits = format_bits(mask)

        def bit(i: int) -> bool:
            return (bits >> i) & 1 == 1

        for i in range(6):
            self._set(8, i, bit(i))
        self._set(8, 7, bit(6))
        self._set(8, 8, bit(7))
        self._set(7, 8, bit(8))
        for i in range(9, 15):
            self._set(14 - i, 8, bit(i))
        for i in range(8):
            self._set(n - 1 - i, 8, bit(i))
        for i in range(8, 15):
            self._set(8, n - 15 + i, bit(i))
        self._set(8, n - 8, True)  # the dark module

    def data_positions(self) -> list[tuple[int, int]]:
        """Non-function modules in placement order (two-column zigzag from bottom right)."""
        n = self.size
        out = []
        right = n - 1
        while right >= 1:
            if right == 6:
                right = 5
            upward = ((right + 1) & 2) == 0
            for vert in range(n):
                y = n - 1 - vert if upward else vert
                for j in range(2):
                    x = right - j
                    if not self.function[y][x]:
                        out.append((x, y))
            right -= 2
        return out

    def _draw_codewords(self, cw: list[int]) -> None:
        bits = [(b >> (7 - i)) & 1 for b in cw for i in range(8)]
        for k, (x, y) in enumerate(self.data_positions()):
            self.modules[y][x] = k < len(bits) and bits[k] == 1

    def _apply_mask(self, mask: int) -> None:
        f = _MASKS[mask]
        for y in range(self.size):
            for x in range(self.size):
                if not self.function[y][x] and f(x, y):
                    self.modules[y][x] = not self.modules[y][x]

    def _penalty(self) -> int:
        n, m = self.size, self.modules
        score = 0
        for lines in (m, [list(c) for c in zip(*m, strict=True)]):
            for row in lines:
                run, prev = 0, None
                for v in row:
                    if v == prev:
                        run += 1
                    else:
                        if run >= 5:
                            score += run - 2
                        run, prev = 1, v
                if run >= 5:
                    score += run - 2
        for y in range(n - 1):
            for x in range(n - 1):
                if m[y][x] == m[y][x + 1] == m[y + 1][x] == m[y + 1][x + 1]:
                    score += 3
        dark = sum(sum(r) for r in m)
        score += abs(dark * 20 - n * n * 10) // (n * n) * 10
        return score

    # ---- output

    def render_half_blocks(self, quiet: int = 2, invert: bool = True) -> str:
        """Two module rows per text line. ``invert``: dark modules drawn as spaces, for the
        usual light-on-dark terminal (scanners need dark modules on a light background)."""
        n = self.size + 2 * quiet

        def dark(x: int, y: int) -> bool:
            x, y = x - quiet, y - quiet
            return 0 <= x < self.size and 0 <= y < self.size and self.modules[y][x]

        lines = []
        for y in range(0, n, 2):
            row = []
            for x in range(n):
                top, bottom = dark(x, y), (dark(x, y + 1) if y + 1 < n else False)
                if invert:
                    top, bottom = not top, (not bottom if y + 1 < n else False)
                row.append(" ▀▄█"[top + 2 * bottom])
            lines.append("".join(row))
        return "\n".join(lines)


def render_half_blocks(text: str) -> str:
    return QR(text.encode("utf-8")).render_half_blocks()
