"""The built-in `text` source: the seed article's example, generated offline.

Short informal messages ("tweets") labelled negative, neutral or positive; and the same
sentiments written as longer product reviews that mostly use other words. Each row of the
pool holds both writings of one message; the initial data reads the tweets, and the
covariate_shift scenario gives the new data the reviews (`as_reviews`): qualitatively
different text, new vocabulary, the same labels. The other scenarios are the usual ones:
more tweets (same_distribution), a sentiment only the new data has (new_classes), and the
same words with a changed meaning (concept_drift: labels rotate among the affected classes).

A seeded generator of its arguments only: nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POOL_ROWS = 2400
SENTIMENTS = ("negative", "neutral", "positive")
TEXT, REVIEW = "text", "review"

# Words only tweets use, by sentiment.
TWEET_WORDS = {
    "negative": ["ugh", "sucks", "fail", "meh", "smh", "worst", "hate", "annoying", "cringe", "trash", "mad",
                 "lame", "yikes", "broke", "rip"],
    "neutral": ["idk", "whatever", "ok", "fine", "normal", "usual", "eh", "same", "average", "regular", "plain",
                "mid", "so-so", "nvm", "kinda"],
    "positive": ["luv", "lit", "awesome", "yay", "gr8", "epic", "fab", "lol", "omg", "dope", "vibes", "slay",
                 "goat", "blessed", "woo"],
}
TWEET_FILLER = ["just", "my", "this", "rn", "tbh", "today", "me", "so", "u", "that", "#mood", "@bestie", "lmao",
                "again", "new", "phone", "day", "lunch", "game", "bus"]
# Words only reviews use, by sentiment.
REVIEW_WORDS = {
    "negative": ["defective", "disappointing", "flimsy", "refund", "unreliable", "overpriced", "broken",
                 "faulty", "returned", "poorly", "cheaply", "useless", "leaking", "cracked", "misleading"],
    "neutral": ["adequate", "acceptable", "standard", "expected", "moderate", "functional", "ordinary",
                "sufficient", "basic", "reasonable", "typical", "unremarkable", "serviceable", "decent", "fair"],
    "positive": ["excellent", "reliable", "sturdy", "recommend", "impressive", "flawless", "durable",
                 "outstanding", "superb", "exceeded", "delighted", "premium", "efficient", "elegant", "perfect"],
}
REVIEW_FILLER = ["the", "product", "battery", "delivery", "arrived", "after", "using", "it", "for", "weeks",
                 "customer", "service", "price", "quality", "packaging", "item", "was", "and", "is", "overall",
                 "i", "purchased", "this", "model", "seller", "its", "design", "manual", "setup", "warranty"]
# A few words both use, so that the tweets' model is not blind to every review.
SHARED_WORDS = {"negative": ["bad", "terrible"], "neutral": ["okay", "alright"], "positive": ["good", "great"]}


def message_pool(rng: np.random.Generator, rows: int = POOL_ROWS) -> tuple[pd.DataFrame, np.ndarray]:
    """`rows` messages, each as a tweet (column `text`) and as a review (column `review`),
    and their sentiment labels."""
    labels = rng.choice(np.array(SENTIMENTS, dtype=object), size=rows)
    tweets = [_tweet(str(y), rng) for y in labels]
    reviews = [_review(str(y), rng) for y in labels]
    return pd.DataFrame({TEXT: tweets, REVIEW: reviews}), labels


def as_reviews(pool: pd.DataFrame, strength: float) -> pd.DataFrame:
    """The new data written as reviews: every row at strength 1 or more, a share `strength`
    of the rows below it (the first rows: the pool is in random order already)."""
    share = min(1.0, strength)
    count = int(round(share * len(pool)))
    out = pool.copy()
    out.loc[out.index[:count], TEXT] = out[REVIEW].iloc[:count].to_numpy()
    return out


def tweets_only(pool: pd.DataFrame) -> pd.DataFrame:
    return pool[[TEXT]]


def _tweet(sentiment: str, rng: np.random.Generator) -> str:
    words = [*_sentiment_words(TWEET_WORDS, sentiment, rng, 1 + int(rng.integers(2))),
             *rng.choice(TWEET_FILLER, size=int(rng.integers(3, 8)))]
    rng.shuffle(words)
    text = " ".join(words)
    return text + rng.choice(["", "!", "!!", " :)", " :(", "..."])


def _review(sentiment: str, rng: np.random.Generator) -> str:
    words = [*_sentiment_words(REVIEW_WORDS, sentiment, rng, 2 + int(rng.integers(2))),
             *rng.choice(REVIEW_FILLER, size=int(rng.integers(14, 30)))]
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def _sentiment_words(lexicon: dict[str, list[str]], sentiment: str, rng: np.random.Generator, n: int) -> list[str]:
    # Most words carry the message's sentiment; one in ten is another's (people mix words),
    # one in six is a word both kinds of text use.
    words = []
    for _ in range(n):
        draw = rng.random()
        if draw < 0.1:
            other = [s for s in SENTIMENTS if s != sentiment]
            words.append(str(rng.choice(lexicon[str(rng.choice(other))])))
        elif draw < 0.1 + 1 / 6:
            words.append(str(rng.choice(SHARED_WORDS[sentiment])))
        else:
            words.append(str(rng.choice(lexicon[sentiment])))
    return words
