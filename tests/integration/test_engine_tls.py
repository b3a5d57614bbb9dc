"""TLS on the engine's gRPC port, as a user sets it up for an engine on
another host: the engine serves its certificate; clients that trust its CA
connect (the engine client, `hearth models`, and `hearth serve`'s adapter),
others and plaintext ones do not; with a client CA set only clients holding a
certificate it signed get in; and an engine bound beyond loopback refuses to
start without an API key, or without TLS unless --insecure-remote says so.
Certificates are throwaway ones from trustme; every process is real."""

import datetime
import ipaddress
import subprocess
import time

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hearth.client import EngineClient
from hearth.tls import ClientTls
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.servers import HEARTH, HearthServer, Process, base_env, free_port

KEY = "tls-test-key-5b1e"
MODEL = "tiny"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine-tls")
    (folder / "models").mkdir()
    write_tiny_llama(folder / "models" / f"{MODEL}.gguf")
    return folder


@pytest.fixture(scope="module")
def certs(folder):
    """PEM files: the CA, the engine's certificate for 127.0.0.1, a client's, and another CA nobody trusts."""
    ca, stranger = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("hearth-client.example")
    files = {
        "ca": ca.cert_pem.bytes(),
        "stranger_ca": stranger.cert_pem.bytes(),
        "server_cert": b"".join(blob.bytes() for blob in server.cert_chain_pems),
        "server_key": server.private_key_pem.bytes(),
        "client_cert": b"".join(blob.bytes() for blob in client.cert_chain_pems),
        "client_key": client.private_key_pem.bytes(),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(data)
    return paths


def self_signed(folder) -> tuple:
    """A self-signed certificate for 127.0.0.1, as a user makes one with openssl for a home server."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hearth engine")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "self-signed.pem", folder / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def engine_env(folder, **extra: str) -> dict[str, str]:
    return base_env(folder / "models", folder / "config.json", LLM_API_KEY=KEY, **extra)


def wait_healthy(process: Process, address: str, tls: ClientTls | None, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    with EngineClient(address, api_key=KEY, tls=tls) as client:
        while time.monotonic() < deadline and process.popen.poll() is None:
            if client.healthy(timeout=1.0):
                return True
            time.sleep(0.2)
    return False


class TlsEngine(Process):
    """`hearth engine` serving TLS, ready once a client trusting ``ready_tls`` gets its health check."""

    def __init__(self, folder, env: dict[str, str], ready_tls: ClientTls, bind: str = "127.0.0.1"):
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        super().__init__([*HEARTH, "engine", "--engine-address", f"{bind}:{port}"], env, folder / f"engine-{port}.log")
        if wait_healthy(self, self.address, ready_tls):
            return
        self.stop()
        raise RuntimeError(f"engine did not start:\n{self.log()}")


def lists_models(address: str, tls: ClientTls | None) -> bool:
    with EngineClient(address, api_key=KEY, tls=tls) as client:
        return client.healthy(timeout=3.0) and [m.id for m in client.list_models(timeout=10)] == [MODEL]


def test_clients_that_trust_the_engines_ca_connect_and_others_do_not(folder, certs):
    env = engine_env(folder, LLM_TLS_CERT=str(certs["server_cert"]), LLM_TLS_KEY=str(certs["server_key"]))
    engine = TlsEngine(folder, env, ClientTls(ca=certs["ca"]))
    try:
        assert lists_models(engine.address, ClientTls(ca=certs["ca"]))
        assert "with TLS" in engine.log()
        # A plaintext client, one trusting another CA, and one checking the certificate for another name get nothing.
        assert not lists_models(engine.address, None)
        assert not lists_models(engine.address, ClientTls(ca=certs["stranger_ca"]))
        assert not lists_models(engine.address, ClientTls(ca=certs["ca"], server_name="elsewhere.example"))
        # The CLI reads the same settings from LLM_ENGINE_TLS_CA.
        cli_env = engine_env(folder, LLM_ENGINE_ADDRESS=engine.address, LLM_ENGINE_TLS_CA=str(certs["ca"]))
        listed = subprocess.run([*HEARTH, "models"], env=cli_env, capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert "engine not running" not in listed.stdout and MODEL in listed.stdout
        plain = subprocess.run(
            [*HEARTH, "models"], env={**cli_env, "LLM_ENGINE_TLS_CA": ""}, capture_output=True, text=True, timeout=120
        )
        assert "engine not running" in plain.stdout
    finally:
        engine.stop()


def test_a_client_ca_lets_in_only_clients_with_a_certificate_it_signed(folder, certs):
    env = engine_env(
        folder,
        LLM_TLS_CERT=str(certs["server_cert"]),
        LLM_TLS_KEY=str(certs["server_key"]),
        LLM_TLS_CLIENT_CA=str(certs["ca"]),
    )
    with_cert = ClientTls(ca=certs["ca"], cert=certs["client_cert"], key=certs["client_key"])
    engine = TlsEngine(folder, env, with_cert)
    try:
        assert lists_models(engine.address, with_cert)
        assert "client certificates required" in engine.log()
        assert not lists_models(engine.address, ClientTls(ca=certs["ca"]))
        # A certificate from a CA the engine does not trust is refused.
        stranger = trustme.CA().issue_cert("intruder.example")
        cert, key = folder / "intruder.pem", folder / "intruder.key"
        cert.write_bytes(stranger.cert_chain_pems[0].bytes())
        key.write_bytes(stranger.private_key_pem.bytes())
        assert not lists_models(engine.address, ClientTls(ca=certs["ca"], cert=cert, key=key))
    finally:
        engine.stop()


def test_hearth_serve_reaches_its_tls_engine_over_tls(folder):
    cert, key = self_signed(folder)
    # No LLM_ENGINE_TLS_CA: the adapter trusts the engine's own self-signed certificate.
    server = HearthServer(
        folder / "models", folder / "config.json", folder / "serve.log", LLM_TLS_CERT=str(cert), LLM_TLS_KEY=str(key)
    )
    try:
        reply = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": MODEL, "prompt": "Hello", "max_tokens": 3, "temperature": 0},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["completion_tokens"] == 3
        with EngineClient(server.engine_address, tls=ClientTls(ca=cert)) as client:
            assert [m.id for m in client.list_models(timeout=10)] == [MODEL]
        with EngineClient(server.engine_address) as client:
            assert not client.healthy(timeout=2.0)
    finally:
        server.stop()


def run_hearth(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*HEARTH, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", ["engine", "serve"])
def test_a_non_loopback_engine_needs_a_key_and_tls_or_insecure_remote(folder, certs, command):
    port = free_port()
    args = [command, "--engine-address", f"0.0.0.0:{port}"] + ["--port", str(free_port())] * (command == "serve")
    keyless = {k: v for k, v in engine_env(folder).items() if k != "LLM_API_KEY"}
    # No key: refused, whatever else is allowed.
    for extra in ([], ["--allow-remote"], ["--insecure-remote"]):
        done = run_hearth(args + extra, keyless)
        assert done.returncode == 2 and "LLM_API_KEY" in done.stderr + done.stdout, done.stderr
    tls = {"LLM_TLS_CERT": str(certs["server_cert"]), "LLM_TLS_KEY": str(certs["server_key"])}
    done = run_hearth(args, {**keyless, **tls})
    assert done.returncode == 2 and "LLM_API_KEY" in done.stderr + done.stdout
    # A key but no TLS: refused, saying how to give TLS or to opt out of it.
    done = run_hearth(args, engine_env(folder))
    output = done.stderr + done.stdout
    assert done.returncode == 2 and "LLM_TLS_CERT" in output and "--insecure-remote" in output, output


def test_a_non_loopback_engine_starts_with_tls_or_insecure_remote(folder, certs):
    tls_env = engine_env(folder, LLM_TLS_CERT=str(certs["server_cert"]), LLM_TLS_KEY=str(certs["server_key"]))
    engine = TlsEngine(folder, tls_env, ClientTls(ca=certs["ca"]), bind="0.0.0.0")
    try:
        assert lists_models(engine.address, ClientTls(ca=certs["ca"]))
    finally:
        engine.stop()
    port = free_port()
    engine = Process(
        [*HEARTH, "engine", "--engine-address", f"0.0.0.0:{port}", "--insecure-remote"],
        engine_env(folder),
        folder / "insecure.log",
    )
    try:
        assert wait_healthy(engine, f"127.0.0.1:{port}", None), engine.log()
        assert "without TLS" in engine.log()
        assert lists_models(f"127.0.0.1:{port}", None)
    finally:
        engine.stop()


def test_an_unusable_certificate_file_is_named(folder, certs):
    not_pem = folder / "not-a-cert.txt"
    not_pem.write_text("hello")
    env = engine_env(folder, LLM_TLS_CERT=str(not_pem), LLM_TLS_KEY=str(certs["server_key"]))
    done = run_hearth(["engine", "--engine-address", f"127.0.0.1:{free_port()}"], env)
    assert done.returncode == 2 and "not-a-cert.txt is not a PEM file" in done.stderr + done.stdout
    env = engine_env(folder, LLM_ENGINE_TLS_CA=str(folder / "missing-ca.pem"))
    done = run_hearth(["models", "--engine-address", f"127.0.0.1:{free_port()}"], env)
    assert done.returncode == 2 and "missing-ca.pem" in done.stderr + done.stdout
