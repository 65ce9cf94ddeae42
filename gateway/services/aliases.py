"""Aliases: a name for a version, with weighted routing to others and sticky routing keys.

An alias lives in its function's record (`Function.aliases`), so the invoke
path resolves it from the record it already caches (≤ 1 s stale): a weight
change reaches every worker within that, with no extra read per call.

Per call (`pick`): without a routing key, a uniform draw in [0, 100) walks the
routed versions' weights (in version order) and falls through to `version`;
with `X-Nimbus-Routing-Key`, the draw is a hash of function, alias and key, so
one key lands on one version for as long as the weights stay the same.
"""

from __future__ import annotations

import hashlib
import random

from store import errors
from store.functions import FunctionRepo
from store.history import HistoryRepo
from store.records import Alias, Function, HistoryEntry, WebhookIndex, new_webhook_key, now

from ..schemas import AliasBody, AliasList, AliasView
from .targets import version_number
from .versions import refuse_unready

MAX_ALIASES = 50


def draw(fn: Function, alias: Alias, routing_key: str | None) -> float:
    """A point in [0, 100): random per call, or fixed by the routing key."""
    if routing_key is None:
        return random.random() * 100
    digest = hashlib.blake2b(f"{fn.id}\0{alias.name}\0{routing_key}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64 * 100


def choose(alias: Alias, point: float) -> int:
    edge = 0.0
    for number, weight in sorted(alias.routing.items()):
        edge += weight
        if point < edge:
            return number
    return alias.version


class AliasService:
    def __init__(self, repo: FunctionRepo, history: HistoryRepo, public_url: str = "") -> None:
        self.repo = repo
        self.history = history
        self.public_url = public_url

    # -- the invoke path ------------------------------------------------------------

    def pick(self, fn: Function, name: str, routing_key: str | None = None) -> int:
        alias = fn.aliases.get(name)
        if alias is None:
            raise errors.NotFound(f"function {fn.name} has no alias {name!r}")
        if not alias.routing:
            return alias.version
        return choose(alias, draw(fn, alias, routing_key))

    # -- views ------------------------------------------------------------------------

    def view(self, alias: Alias) -> AliasView:
        url = f"{self.public_url}/webhook/{alias.webhook_key}" if alias.webhook_key else None
        return AliasView(
            webhook_url=url,
            name=alias.name,
            version=alias.version,
            routing={str(v): w for v, w in sorted(alias.routing.items())},
            description=alias.description,
            canary=alias.canary.model_dump() if alias.canary else None,
            created_at=alias.created_at,
            updated_at=alias.updated_at,
        )

    def list(self, ref: str) -> AliasList:
        fn, _ = self.repo.resolve(ref)
        return AliasList(aliases=[self.view(a) for _, a in sorted(fn.aliases.items())])

    def get(self, ref: str, name: str) -> AliasView:
        fn, _ = self.repo.resolve(ref)
        return self.view(self._alias(fn, name))

    @staticmethod
    def _alias(fn: Function, name: str) -> Alias:
        alias = fn.aliases.get(name)
        if alias is None:
            raise errors.NotFound(f"function {fn.name} has no alias {name!r}")
        return alias

    # -- changes ----------------------------------------------------------------------

    def _webhook(self, fn: Function, name: str, wanted: bool | None, current: str | None):
        """The alias's webhook key after this change; a new key is indexed first (a key
        in a record never lacks its index entry), an old one dropped after the write."""
        if wanted is None or wanted == (current is not None):
            return current, None
        if wanted:
            key = new_webhook_key()
            self.repo.index_webhook(key, WebhookIndex(function_id=fn.id, alias=name))
            return key, None
        return None, current

    def _check(self, fn: Function, body: AliasBody) -> dict[int, float]:
        """The body's versions exist (404) and serve (409); weights are sane (422)."""
        routing: dict[int, float] = {}
        for key, weight in (body.routing or {}).items():
            number = version_number(key)
            if number is None:
                raise errors.Invalid.field("routing", f"{key!r} is not a version number")
            if number == body.version:
                raise errors.Invalid.field("routing", "weights go to versions other than `version`")
            if not 0 < weight <= 100:
                raise errors.Invalid.field(
                    f"routing.{key}", "a weight is a percentage above 0, at most 100"
                )
            routing[number] = weight
        if sum(routing.values()) > 100:
            raise errors.Invalid.field(
                "routing", f"the weights add up to {sum(routing.values()):g} > 100"
            )
        for number in (body.version, *routing):
            refuse_unready(self.repo.get_version(fn.id, number)[0])
        return routing

    def create(self, ref: str, body: AliasBody, *, actor: str) -> AliasView:
        fn, _ = self.repo.resolve(ref)
        if body.name is None:
            raise errors.Invalid.field("name", "an alias needs a name")
        routing = self._check(fn, body)
        key, _ = self._webhook(fn, body.name, body.webhook, None)

        def add(current: Function) -> Function:
            if body.name in current.aliases:
                raise errors.Conflict(
                    f"alias {body.name!r} of {current.name} exists", code="alias_exists"
                )
            if len(current.aliases) >= MAX_ALIASES:
                raise errors.Conflict(f"a function has at most {MAX_ALIASES} aliases")
            current.aliases[body.name] = Alias(
                name=body.name, version=body.version, routing=routing,
                description=body.description or "", webhook_key=key,
            )  # fmt: skip
            current.updated_at = now()
            return current

        fn = self.repo.update_function(fn.id, add)
        self._note(fn, "alias_created", None, fn.aliases[body.name], actor)
        return self.view(fn.aliases[body.name])

    def update(self, ref: str, name: str, body: AliasBody, *, actor: str) -> AliasView:
        fn, _ = self.repo.resolve(ref)
        if body.name is not None and body.name != name:
            raise errors.Invalid.field("name", "an alias cannot be renamed")
        before: list[Alias] = []
        routing = self._check(fn, body)
        existing = self._alias(fn, name).webhook_key
        key, dropped = self._webhook(fn, name, body.webhook, existing)

        def change(current: Function) -> Function:
            alias = self._alias(current, name)
            if alias.canary is not None and alias.canary.status == "progressing":
                raise errors.Conflict(
                    f"alias {name!r} has a canary in progress; abort it first",
                    code="canary_running",
                )
            before[:] = [alias.model_copy()]
            alias.version, alias.routing = body.version, routing
            if body.description is not None:
                alias.description = body.description
            alias.webhook_key = key
            alias.updated_at = current.updated_at = now()
            return current

        fn = self.repo.update_function(fn.id, change)
        if dropped:
            self.repo.drop_webhook(dropped)
        self._note(fn, "alias_updated", before[0], fn.aliases[name], actor)
        return self.view(fn.aliases[name])

    def delete(self, ref: str, name: str, *, actor: str) -> None:
        fn, _ = self.repo.resolve(ref)
        self._alias(fn, name)
        users = self.repo.alias_references(fn, name)
        if users:
            raise errors.Conflict(
                f"alias {name!r} is in use by {', '.join(users)}", code="in_use", details=users
            )
        gone: list[Alias] = []

        def drop(current: Function) -> Function:
            gone[:] = [self._alias(current, name)]
            del current.aliases[name]
            current.updated_at = now()
            return current

        fn = self.repo.update_function(fn.id, drop)
        if gone[0].webhook_key:
            self.repo.drop_webhook(gone[0].webhook_key)
        self._note(fn, "alias_deleted", gone[0], None, actor)

    def _note(
        self, fn: Function, action: str, old: Alias | None, new: Alias | None, actor: str
    ) -> None:
        self.history.append(
            fn.id,
            HistoryEntry(
                action=action,
                alias=(new or old).name,
                from_version=old.version if old else None,
                to_version=new.version if new else None,
                actor=actor,
                reason=_routing_note(new),
            ),
        )


def _routing_note(alias: Alias | None) -> str:
    if alias is None or not alias.routing:
        return ""
    rest = 100 - sum(alias.routing.values())
    parts = [f"{alias.version}: {rest:g}%"]
    parts += [f"{v}: {w:g}%" for v, w in sorted(alias.routing.items())]
    return "routing " + ", ".join(parts)
