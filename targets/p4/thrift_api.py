"""BMv2's Thrift runtime API (the one simple_switch_CLI speaks), called directly: counters and registers.

P4Runtime installs the tables and reads the counters (targets/p4/p4runtime_control.py). What stays here is
what P4Runtime cannot do on BMv2: register reads and writes (its P4Runtime server answers RegisterEntry with
"not supported yet"). One persistent connection
replaces a `simple_switch_CLI` process per command (≈ 300 ms each).

The generated Python bindings (`bm_runtime`) ship with BMv2, not on PyPI: they are loaded from BMv2's own
install (found beside `simple_switch` on PATH, or `C3PO_BM_RUNTIME=DIR` naming the directory that holds
`bm_runtime/`), without putting that directory on sys.path, where its copies of `google` and `p4` would shadow
the protobuf and p4runtime packages P4Runtime needs.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def bm_runtime_dir() -> Path | None:
    """The directory holding BMv2's `bm_runtime` package, or None."""
    env = os.environ.get("C3PO_BM_RUNTIME")
    candidates: list[str] = [env] if env else []
    for tool in ("simple_switch_CLI", "simple_switch"):
        found = shutil.which(tool)
        if found:
            prefix = Path(os.path.realpath(found)).parent.parent
            candidates += sorted(glob.glob(str(prefix / "lib" / "python3*" / "*-packages")))
    candidates += sorted(glob.glob("/usr/lib/python3/dist-packages")) + sorted(glob.glob("/usr/local/lib/python3*/*-packages"))
    for c in candidates:
        if (Path(c) / "bm_runtime" / "standard" / "Standard.py").is_file():
            return Path(c)
    return None


def _load_package(name: str, root: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    init = root / name.replace(".", "/") / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name} from {root}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def unavailable() -> str | None:
    try:
        import thrift  # noqa: F401
    except ImportError:
        return "the Python package 'thrift' is missing (pip install 'c3po[p4]')"
    if bm_runtime_dir() is None:
        return "BMv2's Python runtime bindings (bm_runtime) were not found beside simple_switch (set C3PO_BM_RUNTIME)"
    return None


class ThriftClient:
    """A connection to one switch's Thrift server; call `connect` from inside the switch's namespace."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.transport: Any = None
        self.client: Any = None
        self.types: Any = None

    def connect(self) -> None:
        from thrift.protocol import TBinaryProtocol, TMultiplexedProtocol
        from thrift.transport import TSocket, TTransport

        root = bm_runtime_dir()
        if root is None:
            raise RuntimeError(unavailable() or "bm_runtime not found")
        _load_package("bm_runtime", root)
        standard = importlib.import_module("bm_runtime.standard.Standard")
        self.types = importlib.import_module("bm_runtime.standard.ttypes")
        sock = TSocket.TSocket("127.0.0.1", self.port)
        sock.setTimeout(30_000)
        logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)  # the driver retries until it is up
        self.transport = TTransport.TBufferedTransport(sock)
        self.transport.open()
        proto = TMultiplexedProtocol.TMultiplexedProtocol(TBinaryProtocol.TBinaryProtocol(self.transport), "standard")
        self.client = standard.Client(proto)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # Ports -------------------------------------------------------------------------------------------------
    def port_add(self, iface: str, port: int) -> None:
        """Bind switch port `port` to interface `iface` (simple_switch_CLI's `port_add`), no pcap trace."""
        self.client.bm_dev_mgr_add_port(iface, port, "")

    # Registers ---------------------------------------------------------------------------------------------
    def register_reset(self, name: str) -> None:
        self.client.bm_register_reset(0, name)

    def register_write(self, name: str, index: int, value: int) -> None:
        self.client.bm_register_write(0, name, index, value)

    def register_read_all(self, name: str) -> list[int]:
        return [int(v) for v in self.client.bm_register_read_all(0, name)]
