"""Language identification: a script check for Chinese, Japanese and Korean, langid.py for the rest."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LETTERS = re.compile(r"\w", re.U)
_identifier = None


def detect_language(text: str) -> str:
    """ISO 639-1 code of the main language ('zh', 'en', …); 'und' when there is nothing to go on."""
    letters = len(_LETTERS.findall(text))
    if letters == 0:
        return "und"
    if len(_KANA.findall(text)) / letters > 0.1:
        return "ja"
    if len(_HANGUL.findall(text)) / letters > 0.2:
        return "ko"
    if len(_HAN.findall(text)) / letters > 0.2:  # Chinese words are 1-2 characters: a fifth is plenty
        return "zh"
    global _identifier
    if _identifier is None:
        from langid.langid import LanguageIdentifier, model

        _identifier = LanguageIdentifier.from_modelstring(model, norm_probs=False)
    return _identifier.classify(text[:2000])[0]
