import assert from "node:assert/strict";
import { listenUrls, serve } from "../src/serve.ts";
import { STATUS_CODE } from "../src/http/status.ts";
import { exchange, get, makeTree, SANITIZE, serveConfig } from "./test_util.ts";

Deno.test({
  name: "listenUrls() shows the address it listens on, IPv6 in brackets",
  ...SANITIZE,
  fn(): void {
    assert.deepEqual(
      listenUrls({ transport: "tcp", hostname: "127.0.0.1", port: 7890 }),
      ["http://127.0.0.1:7890/"],
    );
    assert.deepEqual(
      listenUrls({ transport: "tcp", hostname: "::1", port: 8080 }),
      ["http://[::1]:8080/"],
    );
  },
});

Deno.test({
  name: "listenUrls() lists every IPv4 interface for a wildcard address",
  ...SANITIZE,
  fn(): void {
    const ipv4 = Deno.networkInterfaces()
      .filter((i) => i.family === "IPv4")
      .map((i) => `http://${i.address}:7890/`);
    assert.ok(ipv4.includes("http://127.0.0.1:7890/"), "loopback is listed");
    for (const hostname of ["0.0.0.0", "::"]) {
      assert.deepEqual(
        listenUrls({ transport: "tcp", hostname, port: 7890 }),
        ipv4,
        hostname,
      );
    }
  },
});

Deno.test({
  name: "serve() serves the root, prints its banner and stops",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "<p>home</p>\n" });
    try {
      const lines: string[] = [];
      const running = await serve(
        serveConfig([root, "--port", "0", "--host", "127.0.0.1", "--quiet"]),
        { print: (line) => lines.push(line) },
      );
      try {
        assert.ok(running.port > 0);
        assert.equal(running.root, await Deno.realPath(root));
        assert.deepEqual(running.urls, [`http://127.0.0.1:${running.port}/`]);
        assert.deepEqual(lines, [
          `static-srv ${running.root}`,
          `  http://127.0.0.1:${running.port}/`,
        ]);
        const { responses } = await exchange(running.port, get("/"));
        assert.equal(responses[0].status, STATUS_CODE.OK);
        assert.equal(responses[0].text, "<p>home</p>\n");
      } finally {
        running.stop();
        running.stop(); // idempotent
        await running.stopped;
      }
      await assert.rejects(
        Deno.connect({ hostname: "127.0.0.1", port: running.port }),
        Deno.errors.ConnectionRefused,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve() names the address when the port is taken",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "index.html": "x" });
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = taken.addr.port;
      await assert.rejects(
        serve(
          serveConfig([root, "--port", `${port}`, "--host", "127.0.0.1", "-q"]),
          { print: () => {} },
        ),
        {
          message:
            `Cannot listen on "127.0.0.1:${port}": address already in use`,
        },
      );
    } finally {
      taken.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve() refuses a root that is not a directory, naming it",
  ...SANITIZE,
  async fn(): Promise<void> {
    const root = await makeTree({ "file.txt": "x" });
    try {
      for (const path of [`${root}/file.txt`, `${root}/missing`]) {
        await assert.rejects(
          serve(
            serveConfig([path, "--port", "0", "--host", "127.0.0.1", "-q"]),
            {
              print: () => {},
            },
          ),
          (error: Error) => {
            assert.ok(
              error.message.startsWith(`Cannot serve "${path}": `),
              error.message,
            );
            return true;
          },
        );
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
