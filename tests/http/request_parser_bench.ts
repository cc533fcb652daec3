import { parseRequestHead } from "../../src/http/request_parser.ts";
import { ChunkedDecoder } from "../../src/http/body.ts";

const encoder = new TextEncoder();
const WRK = encoder.encode(
  "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:7890\r\n\r\n",
);
const BROWSER = encoder.encode(
  "GET /css/site.css HTTP/1.1\r\nHost: localhost:7890\r\n" +
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0\r\n" +
    "Accept: text/css,*/*;q=0.1\r\nAccept-Language: en-US,en;q=0.5\r\n" +
    "Accept-Encoding: gzip, deflate, br, zstd\r\nConnection: keep-alive\r\n" +
    'Referer: http://localhost:7890/\r\nIf-None-Match: "400-18c2f3a1b2c"\r\n' +
    "Sec-Fetch-Dest: style\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Site: same-origin\r\n\r\n",
);
const CHUNKED = encoder.encode(
  "400\r\n" + "x".repeat(1024) + "\r\n".repeat(1) + "0\r\n\r\n",
);

Deno.bench("parseRequestHead() wrk-style request", {
  group: "parse",
  baseline: true,
}, () => {
  parseRequestHead(WRK);
});

Deno.bench(
  "parseRequestHead() browser request, 12 fields",
  { group: "parse" },
  () => {
    parseRequestHead(BROWSER);
  },
);

Deno.bench("ChunkedDecoder.feed() one 1 KiB chunk", () => {
  new ChunkedDecoder().feed(CHUNKED);
});
