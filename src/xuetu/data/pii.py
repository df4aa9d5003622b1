"""Find and mask personal data: e-mail addresses, phone numbers (Chinese mobiles included), Chinese
ID card numbers (checksum-verified), bank cards (Luhn-verified) and IP addresses.

The safety guards reuse this masker for the serving path and the audit log.
"""

from __future__ import annotations

import re
from collections import Counter

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CN_ID = re.compile(r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dXx])")
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
CN_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ -]?)?(?:\(\d{2,4}\)[ -]?|\d{2,4}[ -])\d{3,4}[ -]?\d{3,4}(?!\d)")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_ID_CHECK = "10X98765432"


def valid_cn_id(number: str) -> bool:
    """GB 11643 check digit."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn(digits: str) -> bool:
    nums = [int(d) for d in digits][::-1]
    total = sum(nums[0::2]) + sum(sum(divmod(2 * d, 10)) for d in nums[1::2])
    return total % 10 == 0


PII_RULES = [
    ("email", EMAIL, None, "[EMAIL]"),
    ("id_card", CN_ID, valid_cn_id, "[ID_CARD]"),
    ("bank_card", CARD, lambda s: luhn(re.sub(r"\D", "", s)), "[BANK_CARD]"),
    ("phone", CN_MOBILE, None, "[PHONE]"),
    ("phone", PHONE, lambda s: len(re.sub(r"\D", "", s)) >= 7, "[PHONE]"),
    ("ip", IPV4, None, "[IP]"),
]
"""(kind, pattern, validator, placeholder) of each kind of personal data; order matters: ID cards and bank
cards before phone numbers. The guard (xuetu.safety.pii) reads them to report where each match is."""


def mask_pii(text: str, counts: Counter | None = None) -> str:
    """Replace personal data with placeholders like [PHONE]; `counts` tallies what was found."""
    for kind, pattern, valid, mask in PII_RULES:
        def repl(m, kind=kind, valid=valid, mask=mask):
            if valid is not None and not valid(m.group(0)):
                return m.group(0)
            if counts is not None:
                counts[kind] += 1
            return mask

        text = pattern.sub(repl, text)
    return text


def find_pii(text: str) -> Counter:
    counts: Counter = Counter()
    mask_pii(text, counts)
    return counts
