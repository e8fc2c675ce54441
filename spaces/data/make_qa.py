"""Write qa.jsonl: short questions with one-sentence answers, generated from rules and small fact
tables written here, for the generative spaces (spaces/smollm2-qa.yaml, tests/test_generative.py).

    python spaces/data/make_qa.py          # rewrites spaces/data/qa.jsonl, byte for byte the same

Each row is `{"question", "answer", "kind"}`. The kinds:

- weekday, month: "What day comes two days after Tuesday?" -> "Two days after Tuesday is
  Thursday." (calendar arithmetic, wrapping around the week or the year)
- units: "How many minutes are in 5 hours?" -> "5 hours is 300 minutes." (a table of 8 fixed
  conversion factors, quantities 2 to 13)
- sum: "What is 7 plus 5?" -> "7 plus 5 is 12." (and minus, results 0 or more)
- story: "Mia has 7 apples and gets 5 more. How many apples does Mia have now?" -> "Mia has 12
  apples now." (and "gives 5 away ... left")
- past, plural, opposite: "What is the past tense of buy?" -> "Today I buy, yesterday I
  bought."; "What is the plural of mouse?" -> "One mouse, two mice."; "What is the opposite of
  full?" -> "Full and empty are opposites." (tables of common English verbs, nouns and antonym
  pairs written here, each word asked once)

Why it is a fair test of fine-tuning:
- The answers are whole sentences of 4 to 9 words, so ROUGE-L, chrF and BLEU grade them (partly
  right phrasing, the right number in the wrong frame), not only exact match.
- There is a rule to learn that the untrained SmolLM2-135M-Instruct does not follow: each kind's
  answer frame and, for the calendar and arithmetic kinds, the computation. Asked with its chat
  template, it answers "The day after Friday is a special day in the context of the Lunar
  Calendar,", "10 - 8 = 1", "The month that comes two months after March is December."; it
  knows most plurals, past tenses and opposites but says them as "The plural of foot is feet.",
  which is why those kinds use other frames (in that frame it scored ROUGE-L 1.0 on a sample of
  8). The gain on the word tables is the frame, elsewhere the frame and the computation. On 64
  eval examples of spaces/smollm2-qa.yaml it scored ROUGE-L 0.39 (sums 0.54, months 0.62, past
  tenses 0.16), exact match 0, nll 1.92 nats/token.
- Nothing leaks: every question occurs once in the file, so the eval split (drawn by autotune
  from these rows) asks only questions training never saw; each word of the word tables is asked
  about once, in one direction (an antonym pair is never asked both ways), so an eval answer is
  not a training answer reversed. What carries over is the rule, not the answer.
- It is written by the project from rules and tables in this file: no download, no licence
  question, deterministic (seeded), and the `kind` column lets a test take some kinds
  (tests/test_generative.py leaves out the longer stories).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("qa.jsonl")
SEED = 0

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
WORDS = ["zero", "one", "two", "three", "four", "five", "six"]

# unit, larger unit, how many of the unit make one of the larger
UNITS = [
    ("seconds", "minute", "minutes", 60),
    ("minutes", "hour", "hours", 60),
    ("hours", "day", "days", 24),
    ("days", "week", "weeks", 7),
    ("months", "year", "years", 12),
    ("centimetres", "metre", "metres", 100),
    ("grams", "kilogram", "kilograms", 1000),
    ("millimetres", "centimetre", "centimetres", 10),
]

NAMES = ["Mia", "Leo", "Ava", "Sam", "Zoe", "Max", "Ivy", "Ben", "Lily", "Omar"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cookies", "coins", "shells"]

PAST = {
    "go": "went", "eat": "ate", "see": "saw", "take": "took", "give": "gave", "write": "wrote",
    "run": "ran", "swim": "swam", "sing": "sang", "drink": "drank", "begin": "began",
    "ring": "rang", "fly": "flew", "grow": "grew", "know": "knew", "throw": "threw",
    "draw": "drew", "drive": "drove", "ride": "rode", "speak": "spoke", "break": "broke",
    "choose": "chose", "freeze": "froze", "wake": "woke", "steal": "stole", "forget": "forgot",
    "get": "got", "buy": "bought", "bring": "brought", "think": "thought", "teach": "taught",
    "catch": "caught", "fight": "fought", "seek": "sought", "sleep": "slept", "keep": "kept",
    "feel": "felt", "leave": "left", "meet": "met", "send": "sent", "spend": "spent",
    "build": "built", "lend": "lent", "bend": "bent", "lose": "lost", "find": "found",
    "hold": "held", "sell": "sold", "tell": "told", "stand": "stood", "understand": "understood",
    "sit": "sat", "win": "won", "make": "made", "pay": "paid", "say": "said", "hear": "heard",
    "come": "came", "become": "became", "fall": "fell", "feed": "fed", "lead": "led",
    "hide": "hid", "bite": "bit", "shake": "shook", "wear": "wore", "tear": "tore",
    "walk": "walked", "jump": "jumped", "play": "played", "cook": "cooked", "clean": "cleaned",
    "open": "opened", "laugh": "laughed", "dance": "danced", "smile": "smiled",
    "bake": "baked", "carry": "carried", "cry": "cried", "study": "studied", "try": "tried",
    "stop": "stopped", "plan": "planned", "hop": "hopped", "visit": "visited",
    "paint": "painted", "wash": "washed", "help": "helped", "move": "moved",
}  # fmt: skip

PLURAL = {
    "mouse": "mice", "goose": "geese", "tooth": "teeth", "foot": "feet", "child": "children",
    "man": "men", "woman": "women", "person": "people", "ox": "oxen", "sheep": "sheep",
    "fish": "fish", "deer": "deer", "leaf": "leaves", "knife": "knives", "wife": "wives",
    "wolf": "wolves", "loaf": "loaves", "shelf": "shelves", "calf": "calves", "half": "halves",
    "life": "lives", "thief": "thieves", "city": "cities", "baby": "babies", "party": "parties",
    "story": "stories", "lady": "ladies", "puppy": "puppies", "berry": "berries",
    "family": "families", "box": "boxes", "fox": "foxes", "bus": "buses", "class": "classes",
    "dish": "dishes", "brush": "brushes", "church": "churches", "watch": "watches",
    "match": "matches", "glass": "glasses", "potato": "potatoes", "tomato": "tomatoes",
    "hero": "heroes", "echo": "echoes", "cactus": "cacti", "fungus": "fungi",
    "crisis": "crises", "analysis": "analyses", "day": "days", "key": "keys", "toy": "toys",
    "boy": "boys", "monkey": "monkeys", "piano": "pianos", "photo": "photos", "roof": "roofs",
    "chief": "chiefs", "cat": "cats", "dog": "dogs", "house": "houses", "tree": "trees",
    "car": "cars", "bird": "birds", "river": "rivers", "cloud": "clouds", "chair": "chairs",
    "table": "tables", "window": "windows", "garden": "gardens", "ticket": "tickets",
}  # fmt: skip

OPPOSITE = {
    "hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "light": "dark",
    "up": "down", "early": "late", "full": "empty", "hard": "soft", "high": "low",
    "long": "short", "new": "old", "open": "closed", "rich": "poor", "strong": "weak",
    "thick": "thin", "wet": "dry", "loud": "quiet", "clean": "dirty", "true": "false",
    "win": "lose", "push": "pull", "buy": "sell", "give": "take", "begin": "end",
    "above": "below", "inside": "outside", "before": "after", "always": "never",
    "friend": "enemy", "question": "answer", "day": "night", "north": "south",
    "east": "west", "left": "right", "top": "bottom", "heavy": "light", "near": "far",
    "cheap": "expensive", "safe": "dangerous", "easy": "difficult", "young": "old",
    "wide": "narrow", "deep": "shallow", "sweet": "sour", "tall": "short", "first": "last",
    "love": "hate", "laugh": "cry", "remember": "forget", "accept": "refuse", "arrive": "leave",
    "sunrise": "sunset", "winter": "summer", "asleep": "awake", "alive": "dead",
    "entrance": "exit", "maximum": "minimum", "victory": "defeat", "brave": "cowardly",
}  # fmt: skip


def calendar(names: list[str], unit: str, offsets: range) -> list[dict[str, str]]:
    """'What day comes two days after Tuesday?' for every name, offset and direction."""
    rows = []
    for index, name in enumerate(names):
        for offset in offsets:
            for word, sign in (("after", 1), ("before", -1)):
                span = f"{WORDS[offset]} {unit}{'s' if offset > 1 else ''} {word} {name}"
                other = names[(index + sign * offset) % len(names)]
                rows.append(
                    {
                        "question": f"What {unit} comes {span}?",
                        "answer": f"{span[0].upper()}{span[1:]} is {other}.",
                    }
                )
    return rows


def units(rng: random.Random) -> list[dict[str, str]]:
    """'How many minutes are in 5 hours?' for 12 quantities of each conversion, in a seeded
    order."""
    rows = []
    for small, _, large, factor in UNITS:
        for n in rng.sample(range(2, 14), 12):
            rows.append(
                {
                    "question": f"How many {small} are in {n} {large}?",
                    "answer": f"{n} {large} is {n * factor} {small}.",
                }
            )
    return rows


def sums(rng: random.Random, count: int) -> list[dict[str, str]]:
    """'What is 7 plus 5?' and 'What is 12 minus 5?', operands 2 to 20, no negative result."""
    rows: dict[str, dict[str, str]] = {}
    while len(rows) < count:
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        if rng.random() < 0.5:
            text, result = f"{a} plus {b}", a + b
        else:
            a, b = max(a, b), min(a, b)
            text, result = f"{a} minus {b}", a - b
        rows.setdefault(text, {"question": f"What is {text}?", "answer": f"{text} is {result}."})
    return list(rows.values())


def stories(rng: random.Random, count: int) -> list[dict[str, str]]:
    """'Mia has 7 apples and gets 5 more. How many apples does Mia have now?' and its
    'gives 5 away ... left' twin, a seeded name, item and pair of numbers each."""
    rows: dict[str, dict[str, str]] = {}
    while len(rows) < count:
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b = rng.randint(3, 20), rng.randint(2, 12)
        if rng.random() < 0.5:
            story, ask, answer = f"gets {b} more", "now", f"{a + b} {item} now"
        else:
            a += b  # at least 1 left
            story, ask, answer = f"gives {b} away", "left", f"{a - b} {item} left"
        question = f"{name} has {a} {item} and {story}. How many {item} does {name} have {ask}?"
        answer = f"{name} has {answer}."
        rows.setdefault(question, {"question": question, "answer": answer})
    return list(rows.values())


def table(facts: dict[str, str], what: str, frame: str) -> list[dict[str, str]]:
    """'What is the plural of mouse?' -> 'One mouse, two mice.' for each word: `frame` with
    {word} and {it}, a sentence the untrained model does not answer in by itself."""
    return [
        {
            "question": f"What is the {what} of {word}?",
            "answer": frame.format(word=word, Word=word.capitalize(), it=it),
        }
        for word, it in facts.items()
    ]


def rows() -> list[dict[str, str]]:
    """Every row, in a seeded order; each question once."""
    rng = random.Random(SEED)
    kinds = {
        "weekday": calendar(DAYS, "day", range(1, 7)),
        "month": calendar(MONTHS, "month", range(1, 5)),
        "units": units(rng),
        "sum": sums(rng, 160),
        "story": stories(rng, 240),
        "past": table(PAST, "past tense", "Today I {word}, yesterday I {it}."),
        "plural": table(PLURAL, "plural", "One {word}, two {it}."),
        "opposite": table(OPPOSITE, "opposite", "{Word} and {it} are opposites."),
    }
    everything = [{**row, "kind": kind} for kind, group in kinds.items() for row in group]
    questions = [row["question"] for row in everything]
    assert len(set(questions)) == len(questions), "a question occurs twice"
    # An antonym pair asked both ways would let training answer an eval question reversed.
    assert not [a for a, b in OPPOSITE.items() if OPPOSITE.get(b) == a], "a pair asked both ways"
    rng.shuffle(everything)
    return everything


def main() -> None:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows()]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} rows to {OUT}")


if __name__ == "__main__":
    main()
