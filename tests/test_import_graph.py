"""The package's module-level imports: no cycle, and every arrow points down.

Read from the source with ``ast`` (nothing is imported), so a cycle or an
upward import is found even where import order happens to make it work.
Imports inside functions are not module-level and are not counted; lazy
imports are kept for optional heavy dependencies only.
"""

import ast
import os
import pkgutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PACKAGE = 'chainercv_i3d'
PACKAGE_DIR = os.path.join(ROOT, PACKAGE)

# The layers, lowest first: a module may import its own layer and lower ones.
# A subpackage (or top-level module) not listed here fails the test: give
# it a layer.
LAYERS = (
    ('leaves', ('', 'chainer_compat', 'modality', 'files', 'presets',
                'label_names', 'architecture', 'scores')),
    # functions: TF-SAME ops and their CPU nodes (functions/cpu), below the
    # network that uses them.
    ('I/O', ('transforms', 'flow', 'utils', 'functions')),
    ('datasets', ('datasets',)),
    ('pretrained', ('pretrained',)),
    ('links', ('links',)),
    ('evaluations', ('evaluations', 'training', 'visualization')),
)
# Test helpers: may import anything; nothing of the package imports them.
TESTING = 'testing'


def package_modules():
    """Returns ``{module name: source path}`` of every module, packages'
    ``__init__`` included, found on disk without importing anything."""
    found = {PACKAGE: os.path.join(PACKAGE_DIR, '__init__.py')}

    def walk(folder, prefix):
        for info in pkgutil.iter_modules([folder]):
            name = prefix + '.' + info.name
            path = os.path.join(folder, info.name)
            if info.ispkg:
                found[name] = os.path.join(path, '__init__.py')
                walk(path, name)
            else:
                found[name] = path + '.py'

    walk(PACKAGE_DIR, PACKAGE)
    return found


def module_level_statements(body):
    """Yields the statements run at import: not those inside functions."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                             ast.Lambda)):
            continue
        yield node
        for field in ('body', 'orelse', 'finalbody'):
            yield from module_level_statements(getattr(node, field, []))
        for handler in getattr(node, 'handlers', []):
            yield from module_level_statements(handler.body)


def imported_names(module, path, is_package):
    """Returns the dotted names a module imports at module level.

    ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a
    submodule); relative imports are resolved against the module's package.
    """
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    package = module if is_package else module.rpartition('.')[0]
    names = []
    for node in module_level_statements(tree.body):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                anchor = '.'.join(parts[:len(parts) - node.level + 1])
                base = anchor + ('.' + base if base else '')
            names.append(base)
            names.extend(base + '.' + alias.name for alias in node.names)
    return names


def loaded_modules(importer, name, modules):
    """The package modules that importing ``name`` from ``importer`` runs:
    the module and the packages above it, except the packages the importer
    sits in (those are already being initialised)."""
    parts = name.split('.')
    own = set()
    parent = importer
    while parent:
        own.add(parent)
        parent = parent.rpartition('.')[0]
    targets = []
    for i in range(1, len(parts) + 1):
        prefix = '.'.join(parts[:i])
        if prefix in modules and prefix not in own:
            targets.append(prefix)
    return targets


def import_graph():
    """Returns ``{module: set of package modules it imports}``."""
    modules = package_modules()
    graph = {}
    for module, path in modules.items():
        is_package = path.endswith('__init__.py')
        graph[module] = set()
        for name in imported_names(module, path, is_package):
            if name == PACKAGE or name.startswith(PACKAGE + '.'):
                graph[module].update(loaded_modules(module, name, modules))
        graph[module].discard(module)
    return graph


def strongly_connected_components(graph):
    """Tarjan's algorithm; returns the components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def one_cycle(graph, component):
    """A cycle through the first module of ``component``, as a list."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    return paths[node] + [start]
                if succ not in paths:
                    paths[succ] = paths[node] + [succ]
                    following.append(succ)
        frontier = following
    raise AssertionError('no cycle through {}'.format(start))


def layer_of(module):
    """Returns ``(rank, layer name)``; rank ``None`` for the test helpers.

    Raises:
        KeyError: The module's subpackage has no layer.
    """
    top = module[len(PACKAGE) + 1:].split('.')[0] if module != PACKAGE else ''
    if top == TESTING:
        return None, TESTING
    for rank, (layer, members) in enumerate(LAYERS):
        if top in members:
            return rank, layer
    raise KeyError(module)


def test_modules_are_found():
    modules = package_modules()
    for name in ('chainercv_i3d', 'chainercv_i3d.architecture',
                 'chainercv_i3d.links', 'chainercv_i3d.links.i3d',
                 'chainercv_i3d.pretrained.tf_checkpoint'):
        assert name in modules


def test_the_graph_sees_from_imports_and_packages():
    graph = import_graph()
    # links/i3d.py: 'from chainercv_i3d.architecture import LAYERS'.
    assert 'chainercv_i3d.architecture' in graph['chainercv_i3d.links.i3d']
    # An import of a module runs the __init__ of the packages above it.
    assert 'chainercv_i3d.pretrained' in graph['chainercv_i3d.links.i3d']
    # The package's own __init__ is not an arrow from its modules.
    assert 'chainercv_i3d.links' not in graph['chainercv_i3d.links.i3d']


def test_a_cycle_is_found_and_shown():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a', 'd'}, 'd': set()}
    components = strongly_connected_components(graph)
    assert components == [['a', 'b', 'c']]
    assert one_cycle(graph, components[0]) == ['a', 'b', 'c', 'a']


def test_no_import_cycle():
    graph = import_graph()
    cycles = [' -> '.join(one_cycle(graph, component))
              for component in strongly_connected_components(graph)]
    assert not cycles, 'module-level import cycles:\n  ' + '\n  '.join(
        cycles)


def test_every_module_has_a_layer():
    unknown = []
    for module in sorted(package_modules()):
        try:
            layer_of(module)
        except KeyError:
            unknown.append(module)
    assert not unknown, ('modules in no layer (add their subpackage to '
                         'LAYERS in {}): {}'.format(__file__,
                                                    ', '.join(unknown)))


def test_imports_point_down_the_layers():
    graph = import_graph()
    upward = []
    for module in sorted(graph):
        rank, layer = layer_of(module)
        for target in sorted(graph[module]):
            target_rank, target_layer = layer_of(target)
            if rank is None:
                continue  # the test helpers may import anything
            if target_rank is None or target_rank > rank:
                upward.append('{} ({}) imports {} ({})'.format(
                    module, layer, target, target_layer))
    assert not upward, 'imports that point up the layers (leaves < ' \
        'transforms/flow/utils/functions < datasets < pretrained < links < ' \
        'evaluations):\n  ' + '\n  '.join(upward)


def test_pretrained_does_not_import_links():
    graph = import_graph()
    edges = ['{} -> {}'.format(module, target)
             for module in sorted(graph)
             if module.startswith(PACKAGE + '.pretrained')
             for target in sorted(graph[module])
             if target.startswith(PACKAGE + '.links')]
    assert not edges, '\n'.join(edges)


def direct_imports(module):
    """The dotted names ``module``'s own import statements name (packages'
    ``__init__`` not added)."""
    path = package_modules()[module]
    return imported_names(module, path, path.endswith('__init__.py'))


def imports_from_to(importers, imported):
    """``'a imports b'`` for every import statement of a module under
    ``importers`` that names a module under ``imported`` (dotted
    prefixes)."""
    return ['{} imports {}'.format(module, name)
            for module in sorted(package_modules())
            if module.startswith(importers)
            for name in direct_imports(module)
            if name.startswith(imported)]


def test_links_reach_the_cpu_nodes_only_through_functions():
    """The network and the fast engine call ``chainercv_i3d.functions``;
    only that package chooses its CPU nodes (``functions.cpu``)."""
    found = imports_from_to(PACKAGE + '.links', PACKAGE + '.functions.cpu')
    assert not found, '\n'.join(found)


def test_functions_do_not_import_the_network():
    found = imports_from_to(PACKAGE + '.functions', PACKAGE + '.links')
    assert not found, '\n'.join(found)


def modules_loaded_by(statement):
    """Runs ``statement`` in a fresh interpreter; returns ``sys.modules``."""
    code = 'import sys\n{}\nprint(" ".join(sorted(sys.modules)))'.format(
        statement)
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize('module', ['chainercv_i3d.utils.comm',
                                    'chainercv_i3d.architecture',
                                    'chainercv_i3d.label_names'])
def test_lower_layers_do_not_load_the_network(module):
    # chainer itself is loaded by `import chainercv_i3d` (chainer_compat
    # must patch its import before anything else imports it); what must not
    # load is the package above these modules.
    loaded = modules_loaded_by('import ' + module)
    higher = [name for name in loaded if name.startswith(tuple(
        PACKAGE + '.' + p for p in ('links', 'pretrained', 'datasets',
                                    'evaluations')))]
    assert not higher, 'importing {} loads {}'.format(module,
                                                      ', '.join(higher))


def test_no_import_of_the_package_inside_functions():
    """Lazy imports are for optional third-party packages only, never a
    way around a cycle of the package's own modules."""
    lazy = []
    for module, path in sorted(package_modules().items()):
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (
                            inner.level or (inner.module or '').startswith(
                                PACKAGE)):
                        lazy.append('{}:{}'.format(module, inner.lineno))
    assert not lazy, 'package imports inside functions: ' + ', '.join(lazy)
