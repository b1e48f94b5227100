"""Reading /metrics as a scraper does: every sample by name and labels, and what moved between two reads."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Sample, float]:
    """Every sample of a scrape, keyed by its name and its labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def key(name: str, **labels: str) -> Sample:
    return name, frozenset(labels.items())


def moved(before: dict[Sample, float], after: dict[Sample, float], prefix: str) -> dict[Sample, float]:
    """The samples named `prefix…` whose value changed, by how much."""
    return {
        sample: value - before.get(sample, 0.0)
        for sample, value in after.items()
        if sample[0].startswith(prefix) and value != before.get(sample, 0.0)
    }
