"""Regenerate the made-up MASSIVE-format sample (data_example/massive/<locale>.jsonl) from templates, deterministically.

Run from the repository root: ``python data_example/massive/generate_sample.py``. The utterances are
written for this sample (no MASSIVE text). Ids are parallel across locales, as in MASSIVE: the same id
has the same intent and slot values in every locale. zh-CN and ja-JP utterances have no spaces, so
they exercise MASSIVE's character segmentation; some of their slot values are Latin words.
"""

import json
import random
from pathlib import Path

LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "ru-RU", "zh-CN", "ja-JP")
NO_SPACE_LOCALES = ("zh-CN", "ja-JP")
PARTITION_SIZES = (("train", 40), ("dev", 20), ("test", 24))

# filler name -> (slot type, {locale: five values}); list positions are translations of each other.
FILLERS = {
    "time": (
        "time",
        {
            "en-US": ["seven am", "half past six", "noon", "nine pm", "ten thirty"],
            "de-DE": ["sieben uhr", "halb sieben", "zwölf uhr", "neun uhr abends", "zehn uhr dreißig"],
            "fr-FR": ["sept heures", "six heures et demie", "midi", "vingt et une heures", "dix heures trente"],
            "es-ES": ["las siete", "las seis y media", "mediodía", "las nueve de la noche", "las diez y media"],
            "ru-RU": ["семь утра", "половину седьмого", "полдень", "девять вечера", "десять тридцать"],
            "zh-CN": ["早上七点", "六点半", "中午", "晚上九点", "十点半"],
            "ja-JP": ["朝七時", "六時半", "正午", "夜九時", "十時半"],
        },
    ),
    "date": (
        "date",
        {
            "en-US": ["tomorrow", "on friday", "this weekend", "on monday", "today"],
            "de-DE": ["morgen", "am freitag", "dieses wochenende", "am montag", "heute"],
            "fr-FR": ["demain", "vendredi", "ce week-end", "lundi", "aujourd'hui"],
            "es-ES": ["mañana", "el viernes", "este fin de semana", "el lunes", "hoy"],
            "ru-RU": ["завтра", "в пятницу", "на этих выходных", "в понедельник", "сегодня"],
            "zh-CN": ["明天", "周五", "这个周末", "周一", "今天"],
            "ja-JP": ["明日", "金曜日", "今週末", "月曜日", "今日"],
        },
    ),
    "place_in": (
        "place_name",
        {
            "en-US": ["berlin", "paris", "tokyo", "madrid", "new york"],
            "de-DE": ["berlin", "paris", "tokio", "madrid", "new york"],
            "fr-FR": ["berlin", "paris", "tokyo", "madrid", "new york"],
            "es-ES": ["berlín", "parís", "tokio", "madrid", "nueva york"],
            "ru-RU": ["берлине", "париже", "токио", "мадриде", "нью-йорке"],
            "zh-CN": ["柏林", "巴黎", "东京", "马德里", "纽约"],
            "ja-JP": ["ベルリン", "パリ", "東京", "マドリード", "ニューヨーク"],
        },
    ),
    "place_to": (
        "place_name",
        {
            "en-US": ["berlin", "paris", "tokyo", "madrid", "new york"],
            "de-DE": ["berlin", "paris", "tokio", "madrid", "new york"],
            "fr-FR": ["berlin", "paris", "tokyo", "madrid", "new york"],
            "es-ES": ["berlín", "parís", "tokio", "madrid", "nueva york"],
            "ru-RU": ["берлина", "парижа", "токио", "мадрида", "нью-йорка"],
            "zh-CN": ["柏林", "巴黎", "东京", "马德里", "纽约"],
            "ja-JP": ["ベルリン", "パリ", "東京", "マドリード", "ニューヨーク"],
        },
    ),
    "artist": (
        "artist_name",
        {
            "en-US": ["adele", "queen", "bob marley", "taylor swift", "miles davis"],
            "de-DE": ["adele", "queen", "bob marley", "taylor swift", "miles davis"],
            "fr-FR": ["adele", "queen", "bob marley", "taylor swift", "miles davis"],
            "es-ES": ["adele", "queen", "bob marley", "taylor swift", "miles davis"],
            "ru-RU": ["адель", "queen", "боба марли", "тейлор свифт", "майлза дэвиса"],
            "zh-CN": ["阿黛尔", "queen", "bob marley", "泰勒·斯威夫特", "miles davis"],
            "ja-JP": ["アデル", "queen", "ボブ・マーリー", "taylor swift", "マイルス・デイヴィス"],
        },
    ),
    "room": (
        "house_place",
        {
            "en-US": ["bedroom", "living room", "bathroom", "hallway", "nursery"],
            "de-DE": ["schlafzimmer", "wohnzimmer", "badezimmer", "flur", "kinderzimmer"],
            "fr-FR": ["la chambre", "le salon", "la salle de bain", "le couloir", "la chambre d'enfant"],
            "es-ES": ["el dormitorio", "el salón", "el baño", "el pasillo", "el cuarto de los niños"],
            "ru-RU": ["спальне", "гостиной", "ванной", "коридоре", "детской"],
            "zh-CN": ["卧室", "客厅", "浴室", "走廊", "儿童房"],
            "ja-JP": ["寝室", "リビング", "浴室", "廊下", "子供部屋"],
        },
    ),
    "event": (
        "event_name",
        {
            "en-US": ["dentist appointment", "team meeting", "yoga class", "birthday party", "piano lesson"],
            "de-DE": [
                "den zahnarzttermin",
                "das teammeeting",
                "den yogakurs",
                "die geburtstagsfeier",
                "die klavierstunde",
            ],
            "fr-FR": [
                "le rendez-vous chez le dentiste",
                "la réunion d'équipe",
                "le cours de yoga",
                "la fête d'anniversaire",
                "la leçon de piano",
            ],
            "es-ES": [
                "la cita con el dentista",
                "la reunión del equipo",
                "la clase de yoga",
                "la fiesta de cumpleaños",
                "la clase de piano",
            ],
            "ru-RU": ["приёме у стоматолога", "встрече команды", "занятии йогой", "дне рождения", "уроке фортепиано"],
            "zh-CN": ["看牙医", "团队会议", "瑜伽课", "生日派对", "钢琴课"],
            "ja-JP": ["歯医者の予約", "チーム会議", "ヨガ教室", "誕生日パーティー", "ピアノのレッスン"],
        },
    ),
    "transport": (
        "transport_type",
        {
            "en-US": ["train", "bus", "plane", "ferry", "night train"],
            "de-DE": ["zug", "bus", "flugzeug", "schiff", "nachtzug"],
            "fr-FR": ["train", "bus", "avion", "ferry", "train de nuit"],
            "es-ES": ["tren", "autobús", "avión", "ferry", "tren nocturno"],
            "ru-RU": ["поезд", "автобус", "самолёт", "паром", "ночной поезд"],
            "zh-CN": ["火车", "大巴", "飞机", "轮渡", "夜班火车"],
            "ja-JP": ["電車", "バス", "飛行機", "フェリー", "夜行列車"],
        },
    ),
}

# intent -> (scenario, {locale: variants}); every locale has as many variants as en-US.
TEMPLATES = {
    "alarm_set": (
        "alarm",
        {
            "en-US": ["wake me up at {time} {date}"],
            "de-DE": ["weck mich {date} um {time}"],
            "fr-FR": ["réveille-moi {date} à {time}"],
            "es-ES": ["despiértame {date} a {time}"],
            "ru-RU": ["разбуди меня {date} в {time}"],
            "zh-CN": ["{date}{time}叫醒我"],
            "ja-JP": ["{date}の{time}に起こして"],
        },
    ),
    "weather_query": (
        "weather",
        {
            "en-US": ["what is the weather like in {place_in} {date}"],
            "de-DE": ["wie wird das wetter {date} in {place_in}"],
            "fr-FR": ["quel temps fera-t-il à {place_in} {date}"],
            "es-ES": ["qué tiempo hará en {place_in} {date}"],
            "ru-RU": ["какая погода будет в {place_in} {date}"],
            "zh-CN": ["{date}{place_in}天气怎么样"],
            "ja-JP": ["{date}の{place_in}の天気は"],
        },
    ),
    "play_music": (
        "play",
        {
            "en-US": ["play some songs by {artist}"],
            "de-DE": ["spiel lieder von {artist}"],
            "fr-FR": ["mets des chansons de {artist}"],
            "es-ES": ["pon canciones de {artist}"],
            "ru-RU": ["включи песни {artist}"],
            "zh-CN": ["播放{artist}的歌"],
            "ja-JP": ["{artist}の曲をかけて"],
        },
    ),
    "iot_hue_lightoff": (
        "iot",
        {
            "en-US": ["turn off the lights in the {room}"],
            "de-DE": ["schalte das licht im {room} aus"],
            "fr-FR": ["éteins la lumière dans {room}"],
            "es-ES": ["apaga la luz en {room}"],
            "ru-RU": ["выключи свет в {room}"],
            "zh-CN": ["关掉{room}的灯"],
            "ja-JP": ["{room}の電気を消して"],
        },
    ),
    "calendar_set": (
        "calendar",
        {
            "en-US": ["remind me about the {event} {date}"],
            "de-DE": ["erinnere mich {date} an {event}"],
            "fr-FR": ["rappelle-moi {event} {date}"],
            "es-ES": ["recuérdame {event} {date}"],
            "ru-RU": ["напомни мне о {event} {date}"],
            "zh-CN": ["提醒我{date}的{event}"],
            "ja-JP": ["{date}の{event}をリマインドして"],
        },
    ),
    "transport_ticket": (
        "transport",
        {
            "en-US": ["book a {transport} ticket to {place_to}"],
            "de-DE": ["buche eine fahrkarte nach {place_to} mit dem {transport}"],
            "fr-FR": ["réserve un billet de {transport} pour {place_to}"],
            "es-ES": ["reserva un billete de {transport} a {place_to}"],
            "ru-RU": ["купи билет на {transport} до {place_to}"],
            "zh-CN": ["订一张去{place_to}的{transport}票"],
            "ja-JP": ["{place_to}行きの{transport}のチケットを予約して"],
        },
    ),
    "datetime_query": (
        "datetime",
        {
            "en-US": ["what time is it in {place_in}"],
            "de-DE": ["wie spät ist es in {place_in}"],
            "fr-FR": ["quelle heure est-il à {place_in}"],
            "es-ES": ["qué hora es en {place_in}"],
            "ru-RU": ["который час в {place_in}"],
            "zh-CN": ["{place_in}现在几点"],
            "ja-JP": ["{place_in}は今何時"],
        },
    ),
    "general_joke": (
        "general",
        {
            "en-US": ["tell me a joke", "make me laugh", "do you know any good jokes"],
            "de-DE": ["erzähl mir einen witz", "bring mich zum lachen", "kennst du gute witze"],
            "fr-FR": ["raconte-moi une blague", "fais-moi rire", "tu connais de bonnes blagues"],
            "es-ES": ["cuéntame un chiste", "hazme reír", "sabes algún buen chiste"],
            "ru-RU": ["расскажи мне анекдот", "рассмеши меня", "знаешь хорошие анекдоты"],
            "zh-CN": ["给我讲个笑话", "逗我笑一下", "你知道什么好笑话吗"],
            "ja-JP": ["冗談を言って", "笑わせて", "面白い話を知ってる"],
        },
    ),
}


def render(template: str, choices: dict, locale: str):
    """The utterance and its MASSIVE annotation for one template and filler choice."""
    plain, annotated = {}, {}
    for name, index in choices.items():
        label, values = FILLERS[name]
        plain[name] = values[locale][index]
        annotated[name] = f" [{label} : {values[locale][index]}] "
    utt, annot = template.format(**plain), " ".join(template.format(**annotated).split())
    return utt, annot


def generate(locale: str):
    """All records of one locale, partitions in order; example k has the same content in every locale."""
    intents, records, k = list(TEMPLATES), [], 0
    for partition, size in PARTITION_SIZES:
        for _ in range(size):
            rng = random.Random(k)
            intent = intents[k % len(intents)]
            scenario, variants = TEMPLATES[intent]
            template = variants[locale][(k // len(intents)) % len(variants[locale])]
            names = [name for name in FILLERS if "{" + name + "}" in template]
            utt, annot = render(template, {name: rng.randrange(5) for name in names}, locale)
            records.append(
                {
                    "id": str(k + 1),
                    "locale": locale,
                    "partition": partition,
                    "scenario": scenario,
                    "intent": intent,
                    "utt": utt,
                    "annot_utt": annot,
                    "worker_id": "sample",
                }
            )
            k += 1
    return records


def main():
    here = Path(__file__).resolve().parent
    for locale in LOCALES:
        lines = [json.dumps(record, ensure_ascii=False) for record in generate(locale)]
        (here / f"{locale}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
