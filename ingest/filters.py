"""Search filters and their translations: a Chroma `where` clause, llama-index MetadataFilters, a BM25 mask.

The Chroma clause is built directly (no llama-index import on the cold `ask` path); `to_metadata_filters`
gives the same restriction as llama-index's public `MetadataFilters`, and `where_of_metadata_filters`
translates any such object (ours or a llama-index user's) with the public API only. A test checks that
both routes select the same papers in a real Chroma.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters


@dataclass(frozen=True)
class Filters:
    """Restrictions applied inside every retriever (dense and lexical alike)."""

    year_from: int | None = None
    year_to: int | None = None
    categories: tuple[str, ...] = ()
    paper_ids: tuple[str, ...] = ()

    def empty(self) -> bool:
        return self == Filters()

    def where(self) -> dict[str, Any] | None:
        """The Chroma `where` clause over chunk metadata (None when nothing is filtered)."""
        parts: list[dict[str, Any]] = []
        if self.year_from is not None:
            parts.append({"year": {"$gte": self.year_from}})
        if self.year_to is not None:
            parts.append({"year": {"$lte": self.year_to}})
        if self.categories:
            cats = [{f"cat:{c}": {"$eq": 1}} for c in self.categories]
            parts.append(cats[0] if len(cats) == 1 else {"$or": cats})
        if self.paper_ids:
            parts.append({"paper_id": {"$in": list(self.paper_ids)}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def to_metadata_filters(self) -> MetadataFilters | None:
        """The same restriction as llama-index MetadataFilters (for llama-index vector stores and users)."""
        from llama_index.core.vector_stores.types import (
            FilterCondition, FilterOperator, MetadataFilter, MetadataFilters,
        )

        parts: list[MetadataFilter | MetadataFilters] = []
        if self.year_from is not None:
            parts.append(MetadataFilter(key="year", value=self.year_from, operator=FilterOperator.GTE))
        if self.year_to is not None:
            parts.append(MetadataFilter(key="year", value=self.year_to, operator=FilterOperator.LTE))
        if self.categories:
            cats = [MetadataFilter(key=f"cat:{c}", value=1, operator=FilterOperator.EQ) for c in self.categories]
            parts.append(cats[0] if len(cats) == 1 else MetadataFilters(filters=cats, condition=FilterCondition.OR))
        if self.paper_ids:
            parts.append(MetadataFilter(key="paper_id", value=list(self.paper_ids), operator=FilterOperator.IN))
        return MetadataFilters(filters=parts, condition=FilterCondition.AND) if parts else None


_OPS = {"==": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte", "in": "$in", "nin": "$nin"}


def where_of_metadata_filters(mf: MetadataFilters) -> dict[str, Any] | None:
    """A Chroma `where` clause from llama-index MetadataFilters, using only their public fields.

    Supports the operators Chroma has (==, !=, >, >=, <, <=, in, nin) and and/or nesting; anything else
    raises ValueError naming the operator."""
    def one(f: MetadataFilter | MetadataFilters) -> dict[str, Any] | None:
        if hasattr(f, "filters"):  # nested MetadataFilters
            return where_of_metadata_filters(f)  # type: ignore[arg-type]
        op = _OPS.get(str(getattr(f.operator, "value", f.operator)))
        if op is None:
            raise ValueError(f"filter operator {f.operator!r} has no Chroma equivalent")
        return {f.key: {op: f.value}}

    parts = [p for p in (one(f) for f in mf.filters) if p is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    cond = str(getattr(mf.condition, "value", mf.condition) or "and").lower()
    if cond not in ("and", "or"):
        raise ValueError(f"filter condition {mf.condition!r} has no Chroma equivalent")
    return {f"${cond}": parts}
