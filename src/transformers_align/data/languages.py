"""The 52 Bactrian-X language codes and the English names that AFP's templates print ("Answer in Chinese")."""

LANGUAGE_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "az": "Azerbaijani", "bn": "Bengali", "cs": "Czech", "de": "German",
    "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "gl": "Galician", "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh", "km": "Khmer", "ko": "Korean",
    "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi",
    "my": "Burmese", "ne": "Nepali", "nl": "Dutch", "pl": "Polish", "ps": "Pashto", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "si": "Sinhala", "sl": "Slovene", "sv": "Swedish", "sw": "Swahili",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian",
    "ur": "Urdu", "vi": "Vietnamese", "xh": "Xhosa", "zh": "Chinese",
}


def language_name(code: str) -> str:
    """English name of a Bactrian-X language code; a clear error for any other code."""
    if code not in LANGUAGE_NAMES:
        raise ValueError(f"unknown language code {code!r}; Bactrian-X's codes are: {', '.join(sorted(LANGUAGE_NAMES))}")
    return LANGUAGE_NAMES[code]
