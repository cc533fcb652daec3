import { encodeResponse, httpDate } from "../../src/http/response.ts";
import { STATUS_CODE } from "../../src/http/status.ts";

const BODY = new Uint8Array(1024).fill(120);
const FIELDS =
  "Content-Type: text/html; charset=utf-8\r\nAccept-Ranges: bytes\r\n" +
  'ETag: "400-18c2f3a1b2c"\r\nLast-Modified: Thu, 26 Nov 2026 19:48:17 GMT\r\n';

Deno.bench("encodeResponse() 200 head + 1 KiB body", {
  group: "encode",
  baseline: true,
}, () => {
  encodeResponse(STATUS_CODE.OK, FIELDS, { body: BODY });
});

Deno.bench("encodeResponse() 304 head only", { group: "encode" }, () => {
  encodeResponse(STATUS_CODE.NotModified, FIELDS, { contentLength: null });
});

Deno.bench("httpDate() cached second", () => {
  httpDate();
});
