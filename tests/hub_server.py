"""A small stand-in for the Hugging Face Hub on 127.0.0.1, enough for the real `huggingface_hub` client.

Upload side: create repo, preupload (every file "regular", with the stored file's git oid so that unchanged
files are skipped), ndjson commits with base64 files, YAML validation. Download side: model info, file
resolution with ETag / X-Repo-Commit headers, and the error codes the client reads. Traffic never leaves
the loopback interface.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

VALID_TOKEN = "hf_test_token"


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubState:
    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo_id -> {"files": {path: bytes}, "commits": [sha]}
        self.log: list[tuple[str, list[str]]] = []  # (repo, paths) of each commit
        self.fail_with: int | None = None  # an HTTP status to answer every API request with, while set
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    state: HubState

    def log_message(self, *args):  # keep test output clean
        pass

    # ----------------------------------------------------------------- plumbing
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None):
        self._send(status, json.dumps(payload).encode(), headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {VALID_TOKEN}":
            return True
        self._json(401, {"error": "Invalid credentials in Authorization header"}, {"X-Error-Message": "Invalid token"})
        return False

    def _injected_failure(self) -> bool:
        status = self.state.fail_with
        if status is None:
            return False
        self._json(status, {"error": "Internal Error - We're working hard to fix this as soon as possible!"})
        return True

    # ----------------------------------------------------------------- routes
    def do_POST(self):
        path = urlparse(self.path).path
        if self._injected_failure():
            return
        if path == "/api/validate-yaml":
            self._body()
            return self._json(200, {})
        if not self._authorized():
            return
        if path == "/api/repos/create":
            body = json.loads(self._body())
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            with self.state.lock:
                if repo_id in self.state.repos:
                    return self._json(409, {"error": "You already created this model repo", "url": self._url(repo_id)})
                self.state.repos[repo_id] = {"files": {}, "commits": ["0" * 40]}
            return self._json(200, {"url": self._url(repo_id), "name": repo_id, "id": repo_id})
        if match := re.fullmatch(r"/api/models/(.+)/preupload/([^/]+)", path):
            repo = self._repo(match.group(1))
            if repo is None:
                return
            files = json.loads(self._body())["files"]
            answer = [
                {
                    "path": f["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_oid(repo["files"][f["path"]]) if f["path"] in repo["files"] else None,
                }
                for f in files
            ]
            return self._json(200, {"files": answer, "commitOid": repo["commits"][-1]})
        if match := re.fullmatch(r"/api/models/(.+)/commit/([^/]+)", path):
            repo = self._repo(match.group(1))
            if repo is None:
                return
            lines = [json.loads(line) for line in self._body().decode().splitlines() if line.strip()]
            with self.state.lock:
                for line in lines:
                    if line["key"] == "file":
                        repo["files"][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                    elif line["key"] == "deletedFile":
                        repo["files"].pop(line["value"]["path"], None)
                    elif line["key"] == "lfsFile":
                        return self._json(400, {"error": "this stand-in accepts regular uploads only"})
                self.state.log.append((match.group(1), [x["value"]["path"] for x in lines if x["key"] == "file"]))
                sha = hashlib.sha1(
                    json.dumps(lines, sort_keys=True).encode() + repo["commits"][-1].encode()
                ).hexdigest()
                repo["commits"].append(sha)
            return self._json(200, {"commitUrl": f"{self._url(match.group(1))}/commit/{sha}", "commitOid": sha})
        self._json(404, {"error": f"no route for POST {path}"})

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = unquote(urlparse(self.path).path)
        if path.startswith("/api/") and self._injected_failure():
            return
        if match := re.fullmatch(r"/api/models/(.+?)(?:/revision/([^/]+))?", path):
            repo = self._repo(match.group(1))
            if repo is None:
                return
            siblings = [{"rfilename": name} for name in sorted(repo["files"])]
            return self._json(
                200, {"id": match.group(1), "sha": repo["commits"][-1], "siblings": siblings, "private": False}
            )
        if match := re.fullmatch(r"/(.+)/resolve/([^/]+)/(.+)", path):
            repo = self._repo(match.group(1))
            if repo is None:
                return
            data = repo["files"].get(match.group(3))
            commit = repo["commits"][-1]
            if data is None:
                headers = {
                    "X-Error-Code": "EntryNotFound",
                    "X-Error-Message": "Entry not found",
                    "X-Repo-Commit": commit,
                }
                return self._json(404, {"error": "Entry not found"}, headers)
            headers = {"ETag": f'"{git_oid(data)}"', "X-Repo-Commit": commit}
            return self._send(200, data, headers, content_type="application/octet-stream")
        self._json(404, {"error": f"no route for GET {path}"})

    def _repo(self, repo_id: str) -> dict | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            headers = {"X-Error-Code": "RepositoryNotFound", "X-Error-Message": "Repository not found"}
            self._json(404, {"error": "Repository not found"}, headers)
        return repo

    def _url(self, repo_id: str) -> str:
        return f"http://{self.server.server_address[0]}:{self.server.server_address[1]}/{repo_id}"


class HubServer:
    """`with HubServer() as hub:` serves on 127.0.0.1 at `hub.url` until the block ends."""

    def __init__(self):
        self.state = HubState()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
