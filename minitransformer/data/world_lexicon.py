"""The words of the toy world, each with its English and Chinese form.

Everything the generator in ``world.py`` says is built from these tables, so the vocabulary stays
small (about 250 English words, about 400 Chinese characters) and every entity the NER data tags
is listed here. The sentences are written for this project. Article §3.2.1 数据准备.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    """A named entity, the same referent in both languages. ``kind`` is PER, LOC or ORG."""

    kind: str
    en: str
    zh: str


@dataclass(frozen=True)
class Person(Entity):
    """A person; ``female`` picks the pronoun (she/her, 她) and the kinship words."""

    female: bool = False


@dataclass(frozen=True)
class Adjective:
    """An adjective that can describe an aspect; ``positive`` is its sentiment when not negated."""

    en: str
    zh: str
    positive: bool


@dataclass(frozen=True)
class Aspect:
    """Something a review talks about: 'the food was ...' / '饭菜很...'."""

    en: str          # the noun phrase after "the"
    be: str          # "was" or "were"
    zh: str
    adjectives: tuple[Adjective, ...]
    kind: str = "thing"   # which OPINION_WORDS beyond "any" fit it: food, people, place, price, show, thing


@dataclass(frozen=True)
class VenueType:
    """A kind of place one visits (restaurant, hotel, ...): what one does there and what one judges."""

    name: str
    activities: tuple[tuple[str, str], ...]   # (English past-tense verb phrase, Chinese verb phrase)
    aspects: tuple[Aspect, ...]


def _per(en: str, zh: str, female: bool) -> Person:
    return Person("PER", en, zh, female)


PEOPLE: tuple[Person, ...] = (
    _per("Anna", "安娜", True), _per("Ben", "本", False), _per("Lily", "莉莉", True),
    _per("Tom", "汤姆", False), _per("Mary", "玛丽", True), _per("Jack", "杰克", False),
    _per("Lucy", "露西", True), _per("David", "大卫", False), _per("Emma", "艾玛", True),
    _per("Sam", "山姆", False), _per("Wang Fang", "王芳", True), _per("Li Ming", "李明", False),
    _per("Zhang Wei", "张伟", False), _per("Chen Jing", "陈静", True), _per("Liu Yang", "刘洋", False),
    _per("Zhao Lei", "赵磊", False), _per("Xu Li", "徐丽", True), _per("Zhou Jie", "周杰", False),
    _per("Kate", "凯特", True), _per("Peter", "彼得", False),
)

CITIES: tuple[Entity, ...] = tuple(Entity("LOC", en, zh) for en, zh in (
    ("Paris", "巴黎"), ("London", "伦敦"), ("Beijing", "北京"), ("Shanghai", "上海"),
    ("Tokyo", "东京"), ("New York", "纽约"), ("Hong Kong", "香港"), ("Berlin", "柏林"),
    ("Rome", "罗马"), ("Sydney", "悉尼"), ("Hangzhou", "杭州"), ("Chengdu", "成都"),
    ("Madrid", "马德里"), ("Moscow", "莫斯科"),
))

WORKPLACES: tuple[Entity, ...] = tuple(Entity("ORG", en, zh) for en, zh in (
    ("Green Bank", "绿色银行"), ("North University", "北方大学"), ("City Hospital", "城市医院"),
    ("Red Apple Company", "红苹果公司"), ("Blue Sky Airlines", "蓝天航空"), ("East Lake School", "东湖学校"),
))


def _adjs(*rows: tuple[str, str, bool]) -> tuple[Adjective, ...]:
    return tuple(Adjective(en, zh, pos) for en, zh, pos in rows)


FOOD = Aspect("food", "was", "饭菜", _adjs(("good", "好", True), ("tasty", "好吃", True), ("fresh", "新鲜", True),
                                          ("bad", "差", False), ("awful", "难吃", False), ("cold", "凉", False)), kind="food")
SERVICE = Aspect("service", "was", "服务", _adjs(("good", "好", True), ("fast", "快", True),
                                                ("bad", "差", False), ("slow", "慢", False)), kind="people")
WAITERS = Aspect("waiters", "were", "服务员", _adjs(("friendly", "友好", True), ("helpful", "热心", True),
                                                  ("rude", "粗鲁", False), ("lazy", "懒", False)), kind="people")
STAFF = Aspect("staff", "were", "工作人员", _adjs(("friendly", "友好", True), ("helpful", "热心", True),
                                               ("rude", "粗鲁", False), ("lazy", "懒", False)), kind="people")
PRICES = Aspect("prices", "were", "价格", _adjs(("low", "低", True), ("fair", "公道", True), ("high", "高", False)), kind="price")
ROOM = Aspect("room", "was", "房间", _adjs(("clean", "干净", True), ("quiet", "安静", True), ("comfortable", "舒服", True),
                                          ("dirty", "脏", False), ("noisy", "吵", False), ("small", "小", False)), kind="place")
COFFEE = Aspect("coffee", "was", "咖啡", _adjs(("delicious", "好喝", True), ("hot", "热", True),
                                              ("bitter", "苦", False), ("cold", "凉", False)), kind="food")
MUSIC = Aspect("music", "was", "音乐", _adjs(("beautiful", "好听", True), ("awful", "难听", False), ("loud", "吵", False)), kind="show")
MOVIE = Aspect("movie", "was", "电影", _adjs(("good", "好看", True), ("exciting", "精彩", True),
                                            ("boring", "无聊", False), ("bad", "难看", False)), kind="show")
SEATS = Aspect("seats", "were", "座位", _adjs(("comfortable", "舒服", True), ("soft", "软", True),
                                             ("hard", "硬", False), ("dirty", "脏", False)), kind="place")
TICKETS = Aspect("tickets", "were", "票", _adjs(("cheap", "便宜", True), ("expensive", "贵", False)), kind="price")
CLOTHES = Aspect("clothes", "were", "衣服", _adjs(("beautiful", "漂亮", True), ("cheap", "便宜", True),
                                               ("ugly", "难看", False), ("expensive", "贵", False)), kind="thing")

RESTAURANT = VenueType("restaurant", (("had dinner", "吃了晚饭"), ("had lunch", "吃了午饭")), (FOOD, SERVICE, WAITERS, PRICES))
CAFE = VenueType("cafe", (("drank coffee", "喝了咖啡"), ("had breakfast", "吃了早饭")), (COFFEE, MUSIC, WAITERS, PRICES))
HOTEL = VenueType("hotel", (("stayed a few days", "住了几天"), ("spent a night", "住了一晚")), (ROOM, STAFF, SERVICE, PRICES))
CINEMA = VenueType("cinema", (("watched a movie", "看了一场电影"), ("watched a new movie", "看了一部新电影")),
                   (MOVIE, SEATS, TICKETS, STAFF))
SHOP = VenueType("shop", (("bought clothes", "买了衣服"), ("bought a coat", "买了一件外套")), (CLOTHES, STAFF, PRICES))


@dataclass(frozen=True)
class Venue(Entity):
    """An organisation one visits and judges (a restaurant, a hotel, ...)."""

    type: VenueType = RESTAURANT


def _venues(vtype: VenueType, *names: tuple[str, str]) -> tuple[Venue, ...]:
    return tuple(Venue("ORG", en, zh, vtype) for en, zh in names)


VENUES: tuple[Venue, ...] = (
    _venues(RESTAURANT, ("Sun Restaurant", "太阳餐厅"), ("Golden Dragon", "金龙饭店"), ("Happy Noodle House", "快乐面馆"))
    + _venues(CAFE, ("Moon Cafe", "月亮咖啡馆"), ("Corner Cafe", "街角咖啡馆"))
    + _venues(HOTEL, ("Star Hotel", "星星酒店"), ("Grand River Hotel", "大河酒店"), ("Garden Hotel", "花园酒店"))
    + _venues(CINEMA, ("Rainbow Cinema", "彩虹电影院"), ("Lucky Cinema", "幸运电影院"))
    + _venues(SHOP, ("Blue Bird Shop", "青鸟商店"), ("Happy Mall", "欢乐商场"))
)

ENTITIES: tuple[Entity, ...] = PEOPLE + CITIES + WORKPLACES + VENUES

# Degree words: (English, Chinese). The plain Chinese clause takes 很 where English takes nothing.
DEGREES: tuple[tuple[str, str], ...] = (("", "很"), ("very", "非常"), ("really", "真"))

JOBS: tuple[tuple[str, str], ...] = (
    ("a teacher", "老师"), ("a doctor", "医生"), ("a student", "学生"), ("a cook", "厨师"),
    ("a driver", "司机"), ("a writer", "作家"), ("a nurse", "护士"), ("an engineer", "工程师"),
)
TIMES: tuple[tuple[str, str], ...] = (
    ("One day", "有一天"), ("Last week", "上个星期"), ("Last year", "去年"), ("On Monday", "星期一"),
    ("On Saturday", "星期六"), ("In the spring", "春天"), ("In the summer", "夏天"),
)
LATER_TIMES: tuple[tuple[str, str], ...] = (("The next day", "第二天"), ("A week later", "一个星期以后"), ("In the evening", "晚上"))
NEXT_TIMES: tuple[tuple[str, str], ...] = (("After that", "之后"), ("The next morning", "第二天早上"), ("That evening", "那天晚上"))
TRANSPORT: tuple[tuple[str, str], ...] = (("by train", "坐火车"), ("by plane", "坐飞机"), ("by bus", "坐大巴"), ("by car", "开车"))
WEATHER: tuple[tuple[str, str], ...] = (("sunny", "天气很好"), ("cold", "很冷"), ("hot", "很热"), ("raining", "在下雨"))
# Relations: (English, Chinese, who may fill it: None = anyone, True = women, False = men)
RELATIONS: tuple[tuple[str, str, bool | None], ...] = (
    ("friend", "朋友", None), ("old friend", "老朋友", None), ("colleague", "同事", None),
    ("classmate", "同学", None), ("sister", "姐姐", True), ("brother", "哥哥", False),
)
# Feelings: positive ones may be negated ('was not happy' / '不高兴'); negative ones never are.
GOOD_FEELINGS: tuple[tuple[str, str], ...] = (("happy", "高兴"), ("pleased", "满意"), ("glad", "开心"))
BAD_FEELINGS: tuple[tuple[str, str], ...] = (("sad", "难过"), ("angry", "生气"), ("disappointed", "失望"))
# Closing sentences of a review, by sentiment; each negative one is the negation of a positive one.
GOOD_CLOSERS: tuple[tuple[str, str], ...] = (("I will come back", "我还会再来"), ("I liked it", "我很喜欢"),
                                             ("I recommend it", "我推荐这里"))
BAD_CLOSERS: tuple[tuple[str, str], ...] = (("I will not come back", "我不会再来了"), ("I did not like it", "我不喜欢"),
                                            ("I do not recommend it", "我不推荐这里"))

# Words of opinion, used by the notes and the short reviews only (never by the stories or the reviews
# above): far more adjectives than a few labelled short reviews can cover, so what a classifier
# knows of the others must come from the unlabelled notes (data/README.md, "What pretraining can
# learn"). "any" fits every aspect, the others the aspects of that kind. No Chinese word here
# contains 不, 没, 很, 又 or 非 (the grammar's own characters).
def _opinion(good: str, bad: str) -> tuple[Adjective, ...]:
    pairs = lambda text: [tuple(w.split(":")) for w in text.split()]  # noqa: E731  "en:zh en:zh ..."
    return _adjs(*[(en, zh, True) for en, zh in pairs(good)], *[(en, zh, False) for en, zh in pairs(bad)])


OPINION_WORDS: dict[str, tuple[Adjective, ...]] = {
    "any": _opinion(
        "great:棒 excellent:出色 wonderful:美妙 perfect:完美 superb:一流 fantastic:绝妙 lovely:可爱 pleasant:愉快 "
        "amazing:惊艳 splendid:精美 brilliant:优秀 outstanding:杰出 marvellous:奇妙 terrific:超赞 fine:优良 decent:像样 "
        "delightful:怡人 impressive:震撼 remarkable:卓越 charming:迷人",
        "terrible:糟糕 horrible:可怕 dreadful:恶劣 poor:差劲 nasty:讨厌 lousy:烂 disappointing:扫兴 mediocre:平庸 "
        "shocking:离谱 pathetic:可悲 miserable:凄惨 inferior:低劣 shoddy:粗劣 worthless:垃圾 weird:古怪"),
    "food": _opinion(
        "sweet:香甜 juicy:多汁 crispy:酥脆 rich:丰盛 authentic:地道 smooth:顺滑 tender:鲜嫩 wholesome:健康 refined:精致",
        "bland:寡淡 stale:变质 greasy:油腻 salty:咸 sour:酸 burnt:焦 smelly:难闻 rotten:腐烂 soggy:湿软 gross:恶心"),
    "people": _opinion(
        "polite:礼貌 kind:和善 patient:耐心 careful:细心 attentive:周到 professional:专业 efficient:高效 quick:迅速 "
        "punctual:准时 reliable:靠谱 honest:诚实 generous:大方 cheerful:开朗 gentle:温柔 thoughtful:贴心 skilled:熟练 "
        "considerate:体贴",
        "unfriendly:冷淡 arrogant:傲慢 careless:马虎 sloppy:草率 impatient:急躁 grumpy:暴躁 greedy:贪心 dishonest:虚伪 "
        "clumsy:笨拙 rushed:仓促 hostile:凶 clueless:糊涂 unhelpful:敷衍 fussy:啰嗦"),
    "place": _opinion(
        "elegant:优雅 cozy:温馨 neat:整洁 tidy:齐整 spacious:宽敞 bright:明亮 warm:温暖 relaxing:惬意 peaceful:宁静 "
        "safe:安全 luxurious:豪华 classy:高档 convenient:方便",
        "shabby:破旧 cramped:拥挤 gloomy:昏暗 damp:潮湿 crude:简陋 chaotic:混乱 filthy:肮脏 messy:凌乱 stuffy:闷热 "
        "freezing:冰冷 dark:阴暗 dangerous:危险 broken:破损 sticky:黏糊 tiring:累人"),
    "price": _opinion("reasonable:合理 affordable:实惠", "overpriced:坑人 unfair:黑心"),
    "show": _opinion("lively:热闹 stylish:时尚", "harsh:刺耳 dull:乏味 tedious:单调 scary:吓人"),
    "thing": _opinion("stylish:时尚 pretty:秀丽 classy:高档", "tacky:俗气 outdated:过时 rough:粗糙 broken:破损"),
}
