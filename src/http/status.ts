/** HTTP status codes used by static-srv, by name (RFC 9110 section 15). */
export const STATUS_CODE = {
  OK: 200,
  NoContent: 204,
  PartialContent: 206,
  MovedPermanently: 301,
  NotModified: 304,
  BadRequest: 400,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  RequestTimeout: 408,
  PreconditionFailed: 412,
  ContentTooLarge: 413,
  URITooLong: 414,
  RangeNotSatisfiable: 416,
  RequestHeaderFieldsTooLarge: 431,
  InternalServerError: 500,
  NotImplemented: 501,
  ServiceUnavailable: 503,
  HTTPVersionNotSupported: 505,
} as const;

/** A status code that static-srv can send. */
export type StatusCode = typeof STATUS_CODE[keyof typeof STATUS_CODE];

/** The reason phrase sent for each status code. */
export const STATUS_TEXT: Readonly<Record<StatusCode, string>> = {
  200: "OK",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  416: "Range Not Satisfiable",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};
