"""Language identification, the one detector data, rag and safety share: a script check for Chinese,
Japanese and Korean, langid.py for the rest; or, for a caller that writes in one of two languages, just
"Chinese or English?".

    detect_language("知识库是什么？")                 # 'zh'  (data: stats, the language filter)
    detect_language("Bonjour tout le monde")          # 'fr'
    detect_language("", zh_or_en=True)                # 'en'  (rag's instructions, the guard's refusals)
"""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_HAN_BASIC = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LETTERS = re.compile(r"\w", re.U)
_identifier = None


def detect_language(text: str, zh_or_en: bool = False) -> str:
    """ISO 639-1 code of the main language ('zh', 'en', …); 'und' when there is nothing to go on.

    zh_or_en=True is for a caller that can only answer in Chinese or English (rag picks its instructions,
    the guard its refusal, retrieval whether an English-only embedder can read the question): 'zh' when a
    fifth or more of the letters (str.isalpha) are Chinese characters, else 'en', also for empty text. It
    never calls langid, so any other language gets English.

    Without it, Chinese needs more than a fifth of the word characters (letters and digits), after Japanese
    (kana over a tenth) and Korean (hangul over a fifth); anything else goes to langid. The two differ only
    at the edges (a text of exactly one fifth Chinese, or heavy in digits), and each caller keeps the rule
    its tests and benchmarks were measured with."""
    if zh_or_en:
        letters = sum(c.isalpha() for c in text)
        return "zh" if letters and len(_HAN_BASIC.findall(text)) * 5 >= letters else "en"
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
