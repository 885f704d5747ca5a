"""Issue 8: the test suite never reaches beyond loopback (pytest-socket, configured in
pyproject's addopts), while the emulator and its moto S3 still work over 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
import requests
from pytest_socket import SocketConnectBlockedError

from synapse_declare.emulator import Emulator


# pytest-socket 0.8 also warns before it raises; the suite turns warnings into errors, which
# would fail any such test just as loudly, but here the block itself is what is checked.
@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
@pytest.mark.parametrize("address", [("192.0.2.1", 443), ("2001:db8::1", 443)])
def test_a_connection_beyond_loopback_fails_loudly(address: tuple[str, int]) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        with pytest.raises(SocketConnectBlockedError):
            sock.connect(address)


def test_loopback_still_reaches_the_emulator_and_moto(emulator: Emulator) -> None:
    response = requests.get(f"{emulator.repo_endpoint}/userProfile", timeout=10)
    assert response.status_code == 200  # the anonymous profile
    assert response.json()["userName"] == "anonymous"
    emulator.s3_client().create_bucket(Bucket="loopback-ok")
    names = [b["Name"] for b in emulator.s3_client().list_buckets()["Buckets"]]
    assert "loopback-ok" in names
