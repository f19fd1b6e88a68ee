"""Which template file a customer gets: the locale variants beside a template.

``tip-1.zh-CN.html.j2`` beside ``tip-1.html.j2`` is sent to customers whose locale is
zh-CN (or zh-Hans-CN, or zh_CN), ``tip-1.zh.html.j2`` to any Chinese, and ``tip-1.html.j2``
to everyone else. The daemon asks for every mail it sends, so a folder's listing is kept
until the folder changes, and the sending's listing only changes when
:meth:`LocaleVariants.refresh` looks again (once per batch, off the event loop).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from reengage.locales import fallbacks, normalise_locale


class LocaleVariants:
    """The locale variants of the templates under ``templates_dir``."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._variants: dict[str, tuple[str, int, dict[str, str]]] = {}
        self._pinned_variants: dict[str, dict[str, str]] = {}

    def refresh(self) -> None:
        """Look again at every folder the pinned resolving has listed."""
        for name in list(self._pinned_variants):
            self._pinned_variants[name] = self._by_locale(name)

    def resolve(self, name: str, locale: str, *, pinned: bool = False) -> str:
        """The template for ``locale``: its own variant (``x.zh-CN.html.j2``), then its
        language's (``x.zh.html.j2``), then ``x``. A variant is found however its file spells
        the locale (``x.zh_CN.html.j2``, ``x.zh-cn.html.j2``), and so is the customer's.
        ``pinned``: the folder's listing as :meth:`refresh` last saw it, if it has one."""
        wanted = fallbacks(locale)
        base = Path(name).name
        if not wanted or "." not in base:  # a name without a suffix has x.zh-CN variants
            spelt = (f"{name}.{candidate}" for candidate in wanted)
            return next((v for v in spelt if (self.templates_dir / v).is_file()), name)
        by_locale = self._by_locale(name, pinned=pinned)
        return next((by_locale[c] for c in wanted if c in by_locale), name)

    def _by_locale(self, name: str, *, pinned: bool = False) -> dict[str, str]:
        # Listing the folder is most of the cost of picking a variant, and it runs for every
        # mail sent: the listing is kept until the folder changes (a file added or removed
        # changes the folder's modification time).
        if pinned:  # as refresh() last saw it; listed now only the first time
            seen = self._pinned_variants.get(name)
            if seen is None:
                seen = self._pinned_variants[name] = self._by_locale(name)
            return seen
        kept = self._variants.get(name)
        folder = kept[0] if kept else str(self.templates_dir / Path(name).parent)
        try:
            stamp = os.stat(folder).st_mtime_ns
        except OSError:
            return {}
        if kept is not None and kept[1] == stamp:
            return kept[2]
        stem, _, rest = Path(name).name.partition(".")
        by_locale: dict[str, str] = {}
        for variant in self.variants(name):  # sorted: x.zh-CN comes before x.zh_CN
            middle = Path(variant).name[len(stem) + 1 : -len(rest) - 1]
            by_locale.setdefault(normalise_locale(middle), variant)
        self._variants[name] = (folder, stamp, by_locale)
        return by_locale

    def variants(self, name: str) -> list[str]:
        """The locale variants that exist beside ``name`` (``x.zh-CN.html.j2`` …).

        A file whose middle part is not a locale (``x.backup-2.html.j2``) is no variant: no
        customer is ever sent it.
        """
        folder, base = Path(name).parent, Path(name).name
        stem, dot, rest = base.partition(".")
        if not dot:
            return []
        pattern = f"{glob.escape(stem)}.*.{glob.escape(rest)}"
        found = []
        for path in sorted((self.templates_dir / folder).glob(pattern)):
            middle = path.name[len(stem) + 1 : -len(rest) - 1]
            try:
                if "." not in middle and normalise_locale(middle):
                    found.append(str(path.relative_to(self.templates_dir)))
            except ValueError:
                continue
        return found
