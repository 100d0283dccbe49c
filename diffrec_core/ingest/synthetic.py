"""Seeded synthetic interaction logs with the structure of real rating data.

The model behind it:

- items have latent vectors ``v_i`` (d = ``n_factors``) around one of ``n_genres`` genre
  centroids, and a long-tailed (Zipf, exponent ``popularity_exponent``) popularity;
- users have a latent taste ``u(t) = u0 + drift · (t − ½) · w`` that moves along a
  personal direction ``w`` over the period, an activity window inside the period, and a
  long-tailed (log-normal) number of interactions;
- each interaction picks a genre with probability ∝ ``exp(taste_sharpness · cos(u(t), c_g))``
  and then an item of that genre by popularity; a ``noise_share`` of interactions instead
  picks any item by global popularity (off-taste, mostly low-rated);
- the rating (1–5) grows with the taste–item affinity ``cos(u(t), v_i)`` plus a user bias
  and noise, so tastes drive both which items are chosen and how they are rated.

Work is per chunk of users with a random stream per chunk, so memory is bounded by the
chunk (never users × items) and the same config gives the same frame on any machine.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, Field, NonNegativeFloat, PositiveInt, model_validator

from diffrec_core.config import FROZEN, Seed
from diffrec_core.ingest.loader import IngestResult, find_batch, ingest_frame

# Cut points on the standardised rating score for ratings 1|2, 2|3, 3|4, 4|5
# (standard-normal quantiles for 6 / 11 / 26 / 34 / 23 %, like MovieLens).
_RATING_CUTS = np.array([-1.555, -0.954, -0.176, 0.739])
# Affinity cos(u(t), v_i) of the rows chosen by taste has about this mean and spread.
_AFFINITY_MEAN, _AFFINITY_STD = 0.22, 0.27


class SyntheticConfig(BaseModel):
    """Size and structure of a synthetic interaction log."""

    model_config = FROZEN

    n_users: PositiveInt = Field(default=3_000, description="Number of users (all appear in the output).")
    n_items: PositiveInt = Field(default=1_500, description="Number of items in the catalogue.")
    n_interactions: PositiveInt = Field(
        default=150_000, description="Target number of rows; the output has about this many (each user-item once)."
    )
    seed: Seed = Field(default=0, description="Seed of every random draw.")
    n_factors: PositiveInt = Field(default=16, description="Dimension d of user tastes and item vectors.")
    n_genres: PositiveInt | None = Field(
        default=None, description="Number of item genres; default n_items // 50 clipped to [8, 64]."
    )
    popularity_exponent: NonNegativeFloat = Field(default=1.0, description="Zipf exponent of item popularity.")
    taste_sharpness: NonNegativeFloat = Field(default=6.0, description="How strongly tastes pick genres.")
    drift: NonNegativeFloat = Field(default=0.6, description="How far a taste moves over the period (0: fixed).")
    noise_share: float = Field(default=0.15, ge=0.0, lt=1.0, description="Share of off-taste interactions.")
    min_per_user: PositiveInt = Field(default=5, description="Fewest interactions per user.")
    start: datetime = Field(default=datetime(2022, 1, 1), description="Start of the period (UTC).")
    days: PositiveInt = Field(default=730, description="Length of the period in days.")
    user_chunk: PositiveInt = Field(default=4_096, description="Users generated per chunk (memory bound).")

    @model_validator(mode="after")
    def _consistent(self) -> "SyntheticConfig":
        if self.min_per_user > self.n_items:
            raise ValueError(f"min_per_user ({self.min_per_user}) must be <= n_items ({self.n_items})")
        if self.n_interactions < self.n_users * self.min_per_user:
            raise ValueError(
                f"n_interactions ({self.n_interactions}) must be >= n_users * min_per_user "
                f"({self.n_users} * {self.min_per_user})"
            )
        if self.n_genres is not None and self.n_genres > self.n_items:
            raise ValueError(f"n_genres ({self.n_genres}) must be <= n_items ({self.n_items})")
        return self

    @property
    def genres(self) -> int:
        if self.n_genres is not None:
            return self.n_genres
        return int(min(max(self.n_items // 50, 8), 64, self.n_items))

    def fingerprint(self) -> str:
        """sha256 of the config's JSON: the identity of the generated 'file' for ingestion."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(f"diffrec-synthetic-v1:{text}".encode()).hexdigest()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class _World:
    """Users and items drawn once from the global stream (O(n_users·d + n_items·d))."""

    def __init__(self, config: SyntheticConfig) -> None:
        rng = np.random.default_rng([config.seed, 0])
        d, n_genres = config.n_factors, config.genres
        self.centroids = _unit(rng.standard_normal((n_genres, d)))
        # Items: genre round-robin over a random order (every genre non-empty), vectors near the centroid.
        self.item_genre = rng.permutation(np.arange(config.n_items) % n_genres)
        self.item_vec = _unit(self.centroids[self.item_genre] + 1.2 * rng.standard_normal((config.n_items, d)) / np.sqrt(d))
        popularity = np.arange(1, config.n_items + 1, dtype=np.float64) ** -config.popularity_exponent
        self.popularity = popularity[rng.permutation(config.n_items)]
        self.global_cdf = np.cumsum(self.popularity) / self.popularity.sum()
        # Per-genre popularity CDFs laid end to end: genre g occupies (g, g + 1].
        self.by_genre = np.lexsort((np.arange(config.n_items), self.item_genre))
        genre_sorted = self.item_genre[self.by_genre]
        weights = self.popularity[self.by_genre]
        totals = np.bincount(genre_sorted, weights=weights, minlength=n_genres)
        cumulative = np.cumsum(weights)
        before = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
        self.genre_cdf = genre_sorted + (cumulative - before[genre_sorted]) / totals[genre_sorted]
        # Users: a taste mostly within a few genres, a drift direction, a bias, a window and an activity level.
        n_users = config.n_users
        home = rng.integers(0, n_genres, size=(n_users, 2))
        self.taste0 = _unit(
            self.centroids[home[:, 0]] + 0.7 * self.centroids[home[:, 1]] + rng.standard_normal((n_users, d)) / np.sqrt(d)
        )
        self.drift_dir = _unit(rng.standard_normal((n_users, d)))
        self.bias = 0.35 * rng.standard_normal(n_users)
        span = rng.uniform(0.05, 1.0, size=n_users)
        self.window_start = rng.uniform(0.0, 1.0, size=n_users) * (1.0 - span)
        self.window_span = span
        activity = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
        extra = config.n_interactions - n_users * config.min_per_user
        counts = config.min_per_user + np.floor(extra * activity / activity.sum()).astype(np.int64)
        self.counts = np.minimum(counts, max(config.min_per_user, int(0.3 * config.n_items)))


def _taste(config: SyntheticConfig, world: _World, row_user: np.ndarray, t: np.ndarray) -> np.ndarray:
    """u(t) for each row: (rows, d), unit length."""
    return _unit(world.taste0[row_user] + config.drift * (t - 0.5)[:, None] * world.drift_dir[row_user])


def _draw(
    config: SyntheticConfig, world: _World, rng: np.random.Generator, row_user: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One interaction per entry of ``row_user``: (item, time as a fraction of the period)."""
    n = len(row_user)
    t = world.window_start[row_user] + world.window_span[row_user] * rng.random(n)
    # Genre by taste (inverse CDF over a softmax), then an item of that genre by popularity.
    logits = config.taste_sharpness * (_taste(config, world, row_user, t) @ world.centroids.T)
    cdf = np.cumsum(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)
    genre = np.minimum((cdf < (rng.random(n) * cdf[:, -1])[:, None]).sum(axis=1), world.centroids.shape[0] - 1)
    pick = np.searchsorted(world.genre_cdf, genre + rng.random(n), side="right")
    item = world.by_genre[np.minimum(pick, len(world.by_genre) - 1)]
    # Off-taste interactions: any item by global popularity.
    noisy = rng.random(n) < config.noise_share
    item[noisy] = np.minimum(np.searchsorted(world.global_cdf, rng.random(int(noisy.sum())), side="right"), config.n_items - 1)
    return item, t


def _chunk(config: SyntheticConfig, world: _World, users: np.ndarray, index: int) -> pd.DataFrame:
    rng = np.random.default_rng([config.seed, 1, index])
    want = world.counts[users]
    first_user = users[0]
    kept_user = np.empty(0, dtype=np.int64)
    kept_item = np.empty(0, dtype=np.int64)
    kept_t = np.empty(0, dtype=np.float64)
    need = want
    # Draw with oversampling, keep distinct (user, item) pairs, top up users still short (a few rounds).
    for _ in range(4):
        row_user = np.repeat(users, np.where(need > 0, 2 * need + 2, 0))
        item, t = _draw(config, world, rng, row_user)
        all_user = np.concatenate([kept_user, row_user])
        all_item = np.concatenate([kept_item, item])
        all_t = np.concatenate([kept_t, t])
        _, first = np.unique(all_user * np.int64(config.n_items) + all_item, return_index=True)
        # Rows kept earlier stay; among new rows a random subset fills each user's quota.
        priority = np.concatenate([np.full(len(kept_user), -1.0), rng.random(len(row_user))])[first]
        order = first[np.lexsort((priority, all_user[first]))]
        ordered_user = all_user[order]
        rank = np.arange(len(order)) - np.searchsorted(ordered_user, ordered_user, side="left")
        keep = np.sort(order[rank < want[ordered_user - first_user]])
        kept_user, kept_item, kept_t = all_user[keep], all_item[keep], all_t[keep]
        need = want - np.bincount(kept_user - first_user, minlength=len(users))
        if need.max() <= 0:
            break
    # Rating from taste-item affinity (standardised), user bias and noise.
    affinity = np.einsum("ij,ij->i", _taste(config, world, kept_user, kept_t), world.item_vec[kept_item])
    score = (
        0.75 * (affinity - _AFFINITY_MEAN) / _AFFINITY_STD
        + world.bias[kept_user]
        + 0.5 * rng.standard_normal(len(kept_item))
    )
    rating = (1 + np.searchsorted(_RATING_CUTS, score)).astype(np.float64)
    seconds = np.floor(kept_t * config.days * 86_400).astype(np.int64)
    order = np.lexsort((kept_item, seconds, kept_user))
    return pd.DataFrame(
        {"user": kept_user[order], "item": kept_item[order], "rating": rating[order], "seconds": seconds[order]}
    )


def _as_text(ids: np.ndarray) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pa.array(ids).cast(pa.large_string())))


def generate(config: SyntheticConfig | None = None) -> pd.DataFrame:
    """A synthetic interaction log: columns user_key, item_key (text ids from 1), rating
    (1–5, float64), ts (datetime64, UTC). Rows are sorted by user, then time.

    Same config (seed included) → identical frame. Memory: O(rows + users·d + items·d).
    """
    config = config or SyntheticConfig()
    world = _World(config)
    chunks = [
        _chunk(config, world, np.arange(lo, min(lo + config.user_chunk, config.n_users)), index)
        for index, lo in enumerate(range(0, config.n_users, config.user_chunk))
    ]
    frame = pd.concat(chunks, ignore_index=True)
    start = np.datetime64(config.start.replace(tzinfo=None), "s")
    return pd.DataFrame(
        {
            "user_key": _as_text(frame["user"].to_numpy() + 1),
            "item_key": _as_text(frame["item"].to_numpy() + 1),
            "rating": frame["rating"].to_numpy(),
            "ts": (start + frame["seconds"].to_numpy().astype("timedelta64[s]")).astype("datetime64[us]"),
        }
    )


def ingest_synthetic(
    con: duckdb.DuckDBPyConnection, dataset: str, config: SyntheticConfig | None = None
) -> IngestResult:
    """Generate and ingest a synthetic log as one batch of ``dataset``.

    The batch's identity is ``config.fingerprint()``: the same config for the same dataset
    is ingested once (later calls return a ``skipped`` result without generating).
    """
    config = config or SyntheticConfig()
    fingerprint = config.fingerprint()
    previous = find_batch(con, dataset, fingerprint)
    if previous is not None:
        return previous
    source = (
        f"synthetic(n_users={config.n_users}, n_items={config.n_items}, "
        f"n_interactions={config.n_interactions}, seed={config.seed}, sha256={fingerprint[:12]})"
    )
    return ingest_frame(con, generate(config), dataset, source=source, sha256=fingerprint)
