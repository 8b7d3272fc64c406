"""Every AWS call the deployed code can make, read from its source (ast), per Lambda handler.

Finds:
- calls on boto3 clients: `client("sqs").send_message_batch(...)` (any `.client("<service>")` or
  `client("<service>")` with a literal service name, boto3's own included), also through a name
  the client was assigned to (`sqs = clients.client("sqs")`, `self._sqs = ...`), or assigned from
  a function that returns one (`sqs = _sqs()`);
- powertools' parameters utility (`parameters.get_secret(...)` and its siblings);
- and, as a safety net, any other `<something>.<method>(...)` whose method is an operation name
  of a watched AWS service but whose receiver the scanner cannot tie to a client: those are
  reported as unresolved, so that a new way of calling AWS fails the test instead of passing it.

Which calls a handler can reach is worked out from references: a function reaches every function
and class it names (a class brings all its methods), transitively, across the modules of app.py
and chalicelib/. Module-level code runs at import, so it counts for every handler (but not an
`if __name__ == "__main__":` block, which runs only as a command). This over-approximates (a
name that is referenced but never called counts) and never misses a reference written in the
code; calls through getattr or strings would be missed, and the code has none.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
from botocore import xform_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WATCHED_SERVICES = (
    "sqs",
    "sns",
    "secretsmanager",
    "ssm",
    "kms",
    "sts",
    "events",
    "scheduler",
    "lambda",
    "cloudwatch",
    "logs",
    "s3",
    "dynamodb",
)
POWERTOOLS_PARAMETERS = "aws_lambda_powertools.utilities.parameters"
POWERTOOLS_CALLS = {
    "get_secret": ("secretsmanager", "GetSecretValue"),
    "get_secrets_by_name": ("secretsmanager", "BatchGetSecretValue"),
    "SecretsProvider": ("secretsmanager", "GetSecretValue"),
    "get_parameter": ("ssm", "GetParameter"),
    "get_parameters": ("ssm", "GetParametersByPath"),
    "get_parameters_by_name": ("ssm", "GetParameters"),
    "SSMProvider": ("ssm", "GetParameter"),
}
MODULE_CODE = "<module>"


@dataclass(frozen=True, order=True)
class AwsCall:
    service: str  # boto3's client name, e.g. "sqs"
    operation: str  # botocore's operation name, e.g. "SendMessageBatch"
    where: str  # path:line


@dataclass
class Unit:
    """A top-level function, a class (with its methods), or a module's top-level code."""

    name: str
    refs: set[str] = field(default_factory=set)
    calls: set[AwsCall] = field(default_factory=set)
    unresolved: set[tuple[str, int, str]] = field(default_factory=set)  # path, line, method


@functools.cache
def operations(service: str) -> dict[str, str]:
    """boto3 method name -> botocore operation name, for one service."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


@functools.cache
def _services() -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_available_services())


@functools.cache
def _watched_operation_names() -> frozenset[str]:
    return frozenset(name for service in WATCHED_SERVICES for name in operations(service))


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runs_as_script_only(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":` (a command's entry point) never runs when a handler imports
    the module."""
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _client_service(node: ast.AST) -> str | None:
    """The service of a client-making call: client("sqs"), x.client("sqs"), boto3.client(...)."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    named_client = (isinstance(func, ast.Name) and func.id == "client") or (
        isinstance(func, ast.Attribute) and func.attr == "client"
    )
    first = node.args[0]
    if named_client and isinstance(first, ast.Constant) and first.value in _services():
        return first.value
    return None


class _Module:
    def __init__(self, name: str, path: Path, root: Path) -> None:
        self.name = name
        self.path = path.relative_to(root).as_posix()
        self.tree = ast.parse(path.read_text(), filename=self.path)
        self.package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        self.aliases: dict[str, str] = {}
        for node in ast.walk(self.tree):  # imports inside functions count too
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        self.aliases[head] = head
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = self.package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
        self.top_level = {
            node.name
            for node in self.tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }

    def qualify(self, parts: list[str]) -> str | None:
        head, rest = parts[0], parts[1:]
        if head in self.top_level:
            return ".".join([self.name, head, *rest])
        if head in self.aliases:
            return ".".join([self.aliases[head], *rest])
        return None


class CodeIndex:
    def __init__(self, root: Path = PROJECT_ROOT) -> None:
        self.root = root
        self.units: dict[str, Unit] = {}
        self.modules: dict[str, _Module] = {}
        for path in self._sources():
            module = _Module(module_name(path, root), path, root)
            self.modules[module.name] = module
        # Functions that return a client they make: `def _sqs(): return x.client("sqs", ...)`.
        self.client_factories = {
            f"{module.name}.{node.name}": service
            for module in self.modules.values()
            for node in module.tree.body
            if isinstance(node, ast.FunctionDef)
            for returned in ast.walk(node)
            if isinstance(returned, ast.Return)
            and (service := _client_service(returned.value)) is not None
        }
        for module in self.modules.values():
            self._index(module)

    def _sources(self) -> Iterator[Path]:
        # What Chalice packages: app.py and chalicelib/ (local-only code lives in devtools/).
        yield self.root / "app.py"
        yield from sorted((self.root / "chalicelib").rglob("*.py"))

    def _index(self, module: _Module) -> None:
        top = Unit(f"{module.name}.{MODULE_CODE}")
        module_clients: dict[str, str] = {}
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                unit = Unit(f"{module.name}.{node.name}")
                self._scan(module, [node], unit, dict(module_clients))
                self.units[unit.name] = unit
            elif not _runs_as_script_only(node):
                self._scan(module, [node], top, module_clients)
        self.units[top.name] = top

    def _made_by_factory(self, module: _Module, node: ast.AST) -> str | None:
        """The service of a client a factory call returns: `sqs = _sqs()`."""
        if not isinstance(node, ast.Call):
            return None
        parts = _dotted(node.func)
        qualified = module.qualify(parts) if parts else None
        return self.client_factories.get(qualified) if qualified else None

    def _resolve(self, module: _Module, node: ast.AST) -> str | None:
        """The qualified name of a unit (or module) a Name/Attribute expression refers to."""
        parts = _dotted(node)
        qualified = module.qualify(parts) if parts else None
        while qualified:
            if qualified in self.units or qualified in self.modules:
                return qualified
            known = self._defined(qualified)
            if known:
                return known
            qualified = qualified.rpartition(".")[0]
        return None

    def _defined(self, qualified: str) -> str | None:
        module, _, name = qualified.rpartition(".")
        if module in self.modules and name in self.modules[module].top_level:
            return qualified
        return None

    def _scan(
        self, module: _Module, nodes: Iterable[ast.AST], unit: Unit, clients: dict[str, str]
    ) -> None:
        for root in nodes:
            for node in ast.walk(root):
                if isinstance(node, ast.Assign):
                    service = _client_service(node.value) or self._made_by_factory(
                        module, node.value
                    )
                    for target in node.targets:
                        parts = _dotted(target)
                        if service and parts:
                            clients[".".join(parts)] = service
                if isinstance(node, ast.Call):
                    self._call(module, node, unit, clients)
                if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                    target = self._resolve(module, node)
                    if target:
                        unit.refs.add(target)

    def _call(self, module: _Module, node: ast.Call, unit: Unit, clients: dict[str, str]) -> None:
        where = f"{module.path}:{node.lineno}"
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = _dotted(func.value)
            service = _client_service(func.value) or (
                clients.get(".".join(receiver)) if receiver else None
            )
            if service:
                operation = self._operation(service, func.attr, node)
                if operation:
                    unit.calls.add(AwsCall(service, operation, where))
                return
        parts = _dotted(func)
        qualified = module.qualify(parts) if parts else None
        if qualified:
            owner, _, name = qualified.rpartition(".")
            if owner == POWERTOOLS_PARAMETERS and name in POWERTOOLS_CALLS:
                unit.calls.add(AwsCall(*POWERTOOLS_CALLS[name], where))
                return
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _watched_operation_names()
            and not (qualified and self._resolve(module, func))
        ):
            unit.unresolved.add((module.path, node.lineno, func.attr))

    @staticmethod
    def _operation(service: str, method: str, node: ast.Call) -> str | None:
        known = operations(service)
        if method in known:
            return known[method]
        if method in ("get_paginator", "get_waiter") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value in known:
                return known[first.value]
        return None  # meta, close, can_paginate, ...: no request

    # --- queries ---------------------------------------------------------------------------

    def reached(self, entries: Iterable[str]) -> set[str]:
        """Units reachable from these (qualified names), with every module's top-level code."""
        todo = [*entries, *(n for n in self.units if n.endswith(f".{MODULE_CODE}"))]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen or name not in self.units:
                continue
            seen.add(name)
            todo.extend(self.units[name].refs)
        return seen

    def calls(self, entries: Iterable[str]) -> set[AwsCall]:
        return {call for name in self.reached(entries) for call in self.units[name].calls}

    def unresolved(self) -> set[tuple[str, int, str]]:
        return {item for unit in self.units.values() for item in unit.unresolved}

    def app_handlers(self) -> dict[str, list[str]]:
        """The functions of each Lambda handler: "app.app" (every route, declared in app.py or
        on a blueprint in chalicelib/) and one per event handler of app.py ("app.expire_holds",
        ...), as Chalice names them in the template."""
        handlers: dict[str, list[str]] = {"app.app": []}
        for node in self.modules["app"].tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            kinds = _decorator_methods(node)
            if "route" in kinds:
                handlers["app.app"].append(f"app.{node.name}")
            elif kinds:
                handlers[f"app.{node.name}"] = [f"app.{node.name}"]
        for module in self.modules.values():
            blueprints = _blueprints(module.tree)
            for node in module.tree.body:
                if isinstance(node, ast.FunctionDef) and _decorator_methods(node, blueprints):
                    handlers["app.app"].append(f"{module.name}.{node.name}")
        return handlers


# The decorators that declare a route: Chalice's own, and those of chalicelib/web/registry.py.
ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete"}
BLUEPRINT_CLASSES = {"Blueprint", "Routes"}


def _blueprints(tree: ast.Module) -> set[str]:
    """Module-level names bound to a new blueprint: `routes = Routes(__name__, ...)`."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            called = _dotted(node.value.func)
            if called and called[-1] in BLUEPRINT_CLASSES:
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _decorator_methods(node: ast.FunctionDef, receivers: set[str] | None = None) -> set[str]:
    """The methods called as this function's decorators (`@app.route(...)` -> "route"); with
    `receivers`, only route decorators called on those names."""
    methods = set()
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute):
            method, receiver = decorator.func.attr, decorator.func.value
            if receivers is None or (
                method in ROUTE_DECORATORS
                and isinstance(receiver, ast.Name)
                and receiver.id in receivers
            ):
                methods.add(method)
    return methods
