"""Where a generic secret lives: one resource group, the main tenant, or tenant-wide."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The scope of a request, sent as the ``AI-Resource-Group`` / ``AI-Tenant-Scope`` headers.

    Use the constructors: :meth:`resource_group`, :meth:`main_tenant`, :meth:`tenant_wide`.
    """

    group: str | None
    tenant: bool

    @classmethod
    def resource_group(cls, group: str) -> Scope:
        """One resource group (``AI-Resource-Group: <group>``)."""
        if not group or group == "*":
            raise ValueError("a resource group needs a name (for every group: tenant_wide())")
        return cls(group, False)

    @classmethod
    def main_tenant(cls) -> Scope:
        """The main tenant (``AI-Tenant-Scope: true``)."""
        return cls(None, True)

    @classmethod
    def tenant_wide(cls) -> Scope:
        """Every resource group, replicated.

        (``AI-Tenant-Scope: true`` and ``AI-Resource-Group: *``.)
        """
        return cls("*", True)

    @property
    def headers(self) -> dict[str, str]:
        """The request headers of this scope."""
        headers = {"AI-Tenant-Scope": "true"} if self.tenant else {}
        if self.group is not None:
            headers["AI-Resource-Group"] = self.group
        return headers

    def __str__(self) -> str:
        if self.group == "*":
            return "tenant-wide"
        return "main tenant" if self.group is None else f"resource group {self.group}"
