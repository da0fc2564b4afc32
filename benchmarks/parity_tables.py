"""The tables of the parity benchmark that no built-in source gives, generated offline.

Each is a pair of pandas frames, the initial data and the incremental data, as a user would
bring them (`data.source: files`), drawn by a seeded generator and nothing else:

- `ratings`: a recommender's ratings. User and item IDs as strings (hundreds of values
  each), the year of the rating and the item's genre; the label is "liked" (yes/no), from a
  user taste times an item profile plus each one's bias. 5,000 ratings, then 2,000 later
  ones (later years, a fifth of them on items released since).
- `posts`: short social-media posts, two classes, whose topics move between the files.
  Sentiment words shared by every topic carry most of the label; each topic also has its
  own words (hundreds, most of them rare, carrying nothing) and a few sentiment words of
  its own. The initial posts are about sports and food, the later ones about tech and
  travel. 2,700 then 1,900 rows.
- `spirals`: three interleaved spirals (three quarters of a turn each) on two numeric
  columns: the project's network reaches 0.48 after 30 epochs and 0.94 after 120. 300 rows, then 600 more of the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GENRES = ("drama", "comedy", "action", "horror", "documentary", "romance")


def ratings(seed: int = 0, initial_rows: int = 5000, later_rows: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng([seed, 42])
    users, items, new_items, width = 400, 300, 60, 4
    taste = rng.normal(size=(users, width))
    profile = rng.normal(size=(items + new_items, width))
    user_bias = rng.normal(0, 0.8, users)
    item_bias = rng.normal(0, 0.8, items + new_items)
    genre = rng.choice(GENRES, items + new_items)

    def draw(rows: int, years: tuple[int, int], new_share: float) -> pd.DataFrame:
        user = rng.integers(0, users, rows)
        fresh = rng.random(rows) < new_share
        item = np.where(fresh, rng.integers(items, items + new_items, rows), rng.integers(0, items, rows))
        score = (taste[user] * profile[item]).sum(axis=1) / np.sqrt(width) + user_bias[user] + item_bias[item]
        liked = score + rng.normal(0, 0.5, rows) > 0
        return pd.DataFrame({
            "user_id": [f"u{u:04d}" for u in user],
            "item_id": [f"i{i:04d}" for i in item],
            "year": rng.integers(years[0], years[1] + 1, rows),
            "genre": genre[item],
            "liked": np.where(liked, "yes", "no"),
        })

    return draw(initial_rows, (2015, 2019), 0.0), draw(later_rows, (2020, 2021), 0.2)


SHARED_SENTIMENT = {
    "negative": ["bad", "awful", "hate", "terrible", "worst", "disappointed", "boring", "meh", "annoying", "sad"],
    "positive": ["good", "great", "love", "amazing", "best", "happy", "fun", "nice", "excellent", "wow"],
}
TOPICS = {
    "sports": ({"negative": ["fumble", "benched"], "positive": ["goal", "champions"]}, "sp"),
    "food": ({"negative": ["stale", "burnt"], "positive": ["tasty", "delicious"]}, "fd"),
    "tech": ({"negative": ["laggy", "crashed"], "positive": ["fast", "sleek"]}, "tc"),
    "travel": ({"negative": ["delayed", "cramped"], "positive": ["scenic", "relaxing"]}, "tv"),
}
FILLER = ["the", "a", "my", "this", "today", "just", "so", "it", "was", "again", "really", "and"]


def posts(seed: int = 0, initial_rows: int = 2700, later_rows: int = 1900) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng([seed, 7])
    # Each topic's own words: 300 of them, Zipf-distributed, so most are rare.
    topic_words = {topic: [f"{prefix}{i:03d}" for i in range(300)] for topic, (_, prefix) in TOPICS.items()}
    zipf = 1.0 / np.arange(1, 301)
    zipf /= zipf.sum()

    def post(topic: str, sentiment: str) -> str:
        own, _ = TOPICS[topic]
        words = list(rng.choice(topic_words[topic], size=rng.integers(3, 7), p=zipf))
        words += list(rng.choice(FILLER, size=rng.integers(2, 5)))
        for _ in range(rng.integers(1, 3)):
            mood = sentiment if rng.random() < 0.85 else ("negative" if sentiment == "positive" else "positive")
            pool = own[mood] if rng.random() < 0.4 else SHARED_SENTIMENT[mood]
            words.append(str(rng.choice(pool)))
        rng.shuffle(words)
        return " ".join(words)

    def draw(rows: int, topics: tuple[str, str]) -> pd.DataFrame:
        topic = rng.choice(topics, size=rows)
        label = rng.choice(["negative", "positive"], size=rows)
        return pd.DataFrame({"post": [post(t, s) for t, s in zip(topic, label)], "label": label})

    return draw(initial_rows, ("sports", "food")), draw(later_rows, ("tech", "travel"))


def spirals(seed: int = 0, initial_rows: int = 300, later_rows: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng([seed, 3])

    def draw(rows: int) -> pd.DataFrame:
        label = rng.integers(0, 3, rows)
        t = rng.uniform(0.05, 1.0, rows)
        angle = 3.0 * np.pi * t + 2.0 * np.pi * label / 3 + rng.normal(0, 0.15, rows)
        return pd.DataFrame({"x0": t * np.sin(angle), "x1": t * np.cos(angle),
                             "arm": np.array(["a", "b", "c"])[label]})

    return draw(initial_rows), draw(later_rows)


TABLES = {"ratings": (ratings, "liked"), "posts": (posts, "label"), "spirals": (spirals, "arm")}


def mixed(seed: int = 0, initial_rows: int = 900, later_rows: int = 450) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small table of every input kind, for the parity test: two numeric columns, a shop ID
    (40 values, 10 of them only in the later rows), a short note; four classes, the fourth only
    in the later rows. The class is read from the numbers, the shop's group and the note's
    first word."""
    rng = np.random.default_rng([seed, 11])
    shop_group = rng.integers(0, 4, 40)
    words = [["calm", "quiet", "slow"], ["busy", "loud", "rush"], ["cold", "wet", "grey"], ["sunny", "warm", "dry"]]

    def draw(rows: int, classes: int, shops: int) -> pd.DataFrame:
        label = rng.integers(0, classes, rows)
        members = [np.flatnonzero(shop_group[:shops] == k) for k in range(4)]
        shop = [int(rng.choice(members[k])) if len(members[k]) and rng.random() < 0.6 else int(rng.integers(0, shops))
                for k in label]
        x = rng.normal(size=(rows, 2)) + np.c_[np.cos(label * np.pi / 2), np.sin(label * np.pi / 2)]
        note = [f"{rng.choice(words[k]) if rng.random() < 0.7 else rng.choice(sum(words, []))} "
                f"day {rng.choice(['at', 'near', 'by'])} shop" for k in label]
        return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "shop": [f"s{s:02d}" for s in shop], "note": note,
                             "kind": np.array(["a", "b", "c", "d"])[label]})

    return draw(initial_rows, 3, 30), draw(later_rows, 4, 40)


TABLES["mixed"] = (mixed, "kind")
