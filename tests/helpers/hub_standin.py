"""A local stand-in for the Hugging Face Hub's HTTP API, on 127.0.0.1, for pull tests.

It answers the calls huggingface_hub makes for a pull: the model info with file
metadata (GET /api/models/{repo}/revision/{rev}?blobs=true), the file's HEAD
(X-Repo-Commit, ETag and X-Linked-Etag = the LFS sha256, X-Linked-Size) and its
GET, with Range support. Errors carry the X-Error-Code headers the hub sends, so
huggingface_hub raises the same exceptions as against the real hub. A file can
be served slowly, can advertise a wrong sha256, and can drop the connection
after N bytes on its first download; every request is recorded."""

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class HubFile:
    content: bytes
    # The sha256 the hub advertises; None: the true one.
    advertised_sha256: str | None = None
    # The first GET sends this many bytes of the body, then drops the connection.
    drop_after: int | None = None
    # Throttle for the body; None: as fast as possible.
    bytes_per_second: int | None = None
    downloads_started: int = 0

    @property
    def sha256(self) -> str:
        return self.advertised_sha256 or hashlib.sha256(self.content).hexdigest()


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile]
    commit: str = ""
    # A gated repository: files need "Authorization: Bearer <token>".
    token: str | None = None

    def __post_init__(self):
        if not self.commit:
            self.commit = hashlib.sha1(self.repo_id.encode()).hexdigest()


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_SLICE = 4096


class HubStandIn:
    def __init__(self):
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub stand-in", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(self, repo: HubRepo) -> HubRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def requests_for(self, file_name: str, method: str = "GET") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.endswith("/" + file_name)]

    def __enter__(self) -> "HubStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler_class(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

            def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
                body = f'{{"error": "{message}"}}'.encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _repo(self, repo_id: str, revision: str | None) -> HubRepo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    # The hub answers 401 for a repository it will not show an anonymous caller.
                    self._error(401, "RepoNotFound", "Repository not found")
                    return None
                if revision not in (None, "main", repo.commit):
                    self._error(404, "RevisionNotFound", "Invalid rev id: " + revision)
                    return None
                return repo

            def _dispatch(self) -> None:
                path = unquote(urlsplit(self.path).path)
                hub._record(RecordedRequest(self.command, path, {k.lower(): v for k, v in self.headers.items()}))
                if match := _API.match(path):
                    if self.command != "GET":
                        return self._error(405, "MethodNotAllowed", "Method not allowed")
                    return self._model_info(match["repo"], match["rev"])
                if match := _RESOLVE.match(path):
                    return self._resolve(match["repo"], match["rev"], match["file"])
                self._error(404, "NotFound", "Not found")

            do_GET = do_HEAD = _dispatch

            def _model_info(self, repo_id: str, revision: str | None) -> None:
                repo = self._repo(repo_id, revision)
                if repo is None:
                    return
                import json

                siblings = [
                    {
                        "rfilename": name,
                        "size": len(f.content),
                        "blobId": hashlib.sha1(f.content).hexdigest(),
                        "lfs": {"size": len(f.content), "sha256": f.sha256, "pointerSize": 134},
                    }
                    for name, f in repo.files.items()
                ]
                body = json.dumps(
                    {"id": repo.repo_id, "sha": repo.commit, "gated": bool(repo.token), "siblings": siblings}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _resolve(self, repo_id: str, revision: str, name: str) -> None:
                repo = self._repo(repo_id, revision)
                if repo is None:
                    return
                if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
                    return self._error(
                        401, "GatedRepo", f"Access to model {repo_id} is restricted. You must be authenticated."
                    )
                file = repo.files.get(name)
                if file is None:
                    return self._error(404, "EntryNotFound", "Entry not found", commit=repo.commit)
                size = len(file.content)
                start = 0
                if range_header := self.headers.get("Range"):
                    start = int(re.fullmatch(r"bytes=(\d+)-\d*", range_header.strip())[1])
                body = file.content[start:]
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("ETag", f'"{file.sha256}"')
                self.send_header("X-Linked-Etag", f'"{file.sha256}"')
                self.send_header("X-Linked-Size", str(size))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                with hub._lock:
                    file.downloads_started += 1
                    first = file.downloads_started == 1
                limit = file.drop_after if first and file.drop_after is not None else len(body)
                try:
                    self._send_body(body[:limit], file.bytes_per_second)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (a cancelled pull)
                    return
                if limit < len(body):
                    # Drop the connection mid-body, as a flaky network does.
                    self.close_connection = True
                    self.wfile.flush()

            def _send_body(self, body: bytes, bytes_per_second: int | None) -> None:
                for offset in range(0, len(body), _SLICE):
                    self.wfile.write(body[offset : offset + _SLICE])
                    if bytes_per_second:
                        self.wfile.flush()
                        time.sleep(_SLICE / bytes_per_second)

        return Handler
