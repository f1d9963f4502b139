// src/msgpack.js
var utf8 = new TextEncoder();
var text = new TextDecoder();
var invalid = (what) => new Error(`invalid MessagePack ${what}`);
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
function encode(value) {
  const w = new Writer();
  w.value(value);
  return w.buf.slice(0, w.pos);
}
function decode(bytes) {
  const r = new Reader(bytes);
  const value = r.value();
  if (r.pos !== bytes.length) throw invalid("value: trailing bytes");
  return value;
}
var Writer = class {
  constructor() {
    this.pos = 0;
    this.buf = new Uint8Array(64);
    this.view = new DataView(this.buf.buffer);
  }
  // Makes room for `size` more bytes.
  room(size) {
    if (this.pos + size <= this.buf.length) return;
    const old = this.buf;
    this.buf = new Uint8Array(2 * (this.pos + size));
    this.view = new DataView(this.buf.buffer);
    this.buf.set(old);
  }
  // Writes `n` with the DataView setter `set` over `size` bytes.
  raw(set, size, n) {
    this.room(size);
    if (size) this.view[set](this.pos, n);
    this.pos += size;
  }
  // Writes a type byte, then `n` as `raw` does.
  put(type, set, size = 0, n) {
    this.raw("setUint8", 1, type);
    this.raw(set, size, n);
  }
  bytes(data) {
    this.room(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
  // The head of a string, binary, array or map of `n` items: a fix form below `fixMax`, else 8/16/32 bits.
  head(n, fix, fixMax, [c8, c16, c32]) {
    if (n < fixMax) this.put(fix + n);
    else if (n < 256 && c8) this.put(c8, "setUint8", 1, n);
    else if (n < 65536) this.put(c16, "setUint16", 2, n);
    else this.put(c32, "setUint32", 4, n);
  }
  value(v) {
    if (v == null) this.put(192);
    else if (typeof v == "boolean") this.put(v ? 195 : 194);
    else if (typeof v == "number") this.number(v);
    else if (typeof v == "bigint") this.put(v < 0 ? 211 : 207, v < 0 ? "setBigInt64" : "setBigUint64", 8, v);
    else if (typeof v == "string") this.chunk(utf8.encode(v), 160, 32, [217, 218, 219]);
    else if (v instanceof Date) this.date(v.getTime());
    else if (v instanceof ArrayBuffer) this.chunk(new Uint8Array(v), 0, 0, [196, 197, 198]);
    else if (ArrayBuffer.isView(v)) this.chunk(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 0, 0, [196, 197, 198]);
    else if (Array.isArray(v)) {
      this.head(v.length, 144, 16, [0, 220, 221]);
      v.forEach((item) => this.value(item));
    } else this.map(v);
  }
  chunk(data, fix, fixMax, codes) {
    this.head(data.length, fix, fixMax, codes);
    this.bytes(data);
  }
  // An object's own properties, as JSON.stringify sees them (undefined ones left out).
  map(object) {
    const entries = Object.entries(object).filter((entry) => entry[1] !== void 0);
    this.head(entries.length, 128, 16, [0, 222, 223]);
    for (const [key, item] of entries) {
      this.value(key);
      this.value(item);
    }
  }
  number(n) {
    if (!Number.isSafeInteger(n)) this.put(203, "setFloat64", 8, n);
    else if (n >= -32 && n < 128) this.put(n & 255);
    else if (n > 0) {
      if (n < 256) this.put(204, "setUint8", 1, n);
      else if (n < 65536) this.put(205, "setUint16", 2, n);
      else if (n < 2 ** 32) this.put(206, "setUint32", 4, n);
      else this.put(207, "setBigUint64", 8, BigInt(n));
    } else if (n >= -128) this.put(208, "setInt8", 1, n);
    else if (n >= -32768) this.put(209, "setInt16", 2, n);
    else if (n >= -(2 ** 31)) this.put(210, "setInt32", 4, n);
    else this.put(211, "setBigInt64", 8, BigInt(n));
  }
  // A timestamp (ext -1) in its shortest form: 32 bits of seconds; 30 bits of ns + 34 of seconds; 32 + 64.
  date(ms) {
    const sec = Math.floor(ms / 1e3);
    const nsec = (ms - sec * 1e3) * 1e6;
    if (sec >= 0 && sec < 2 ** 34) {
      if (!nsec && sec < 2 ** 32) {
        this.put(214, "setInt8", 1, -1);
        return this.raw("setUint32", 4, sec);
      }
      this.put(215, "setInt8", 1, -1);
      this.raw("setUint32", 4, nsec * 4 + Math.floor(sec / 2 ** 32));
      return this.raw("setUint32", 4, sec >>> 0);
    }
    this.put(199, "setUint8", 1, 12);
    this.raw("setInt8", 1, -1);
    this.raw("setUint32", 4, nsec);
    this.raw("setBigInt64", 8, BigInt(sec));
  }
};
var FIXED = {
  202: ["getFloat32", 4],
  203: ["getFloat64", 8],
  204: ["getUint8", 1],
  205: ["getUint16", 2],
  206: ["getUint32", 4],
  207: ["getBigUint64", 8],
  208: ["getInt8", 1],
  209: ["getInt16", 2],
  210: ["getInt32", 4],
  211: ["getBigInt64", 8]
};
var LENGTH = [, "getUint8", "getUint16", , "getUint32"];
var Reader = class {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  // Reads `size` bytes with the DataView getter `get` (64-bit integers become Numbers).
  num(get, size) {
    const at = this.take(size);
    const n = this.view[get](at);
    return typeof n == "bigint" ? Number(n) : n;
  }
  // Advances by `size` bytes and returns where they start.
  take(size) {
    const at = this.pos;
    if ((this.pos += size) > this.bytes.length) throw invalid("value: truncated");
    return at;
  }
  slice(size) {
    const at = this.take(size);
    return this.bytes.slice(at, at + size);
  }
  // A length of 1, 2 or 4 bytes.
  len(size) {
    return this.num(LENGTH[size], size);
  }
  value() {
    const t = this.num("getUint8", 1);
    if (t < 128) return t;
    if (t >= 224) return t - 256;
    if (t < 144) return this.map(t & 15);
    if (t < 160) return this.array(t & 15);
    if (t < 192) return this.str(t & 31);
    if (FIXED[t]) return this.num(...FIXED[t]);
    if (t >= 196 && t <= 198) return this.slice(this.len(2 ** (t - 196)));
    if (t >= 199 && t <= 201) return this.ext(this.len(2 ** (t - 199)));
    if (t >= 212 && t <= 216) return this.ext(2 ** (t - 212));
    if (t >= 217 && t <= 219) return this.str(this.len(2 ** (t - 217)));
    if (t === 220 || t === 221) return this.array(this.len(t === 220 ? 2 : 4));
    if (t === 222 || t === 223) return this.map(this.len(t === 222 ? 2 : 4));
    if (t >= 192 && t <= 195 && t !== 193) return [null, , false, true][t - 192];
    throw invalid(`value: unknown type byte 0x${t.toString(16)}`);
  }
  str(size) {
    return text.decode(this.slice(size));
  }
  array(n) {
    const items = [];
    while (n--) items.push(this.value());
    return items;
  }
  map(n) {
    const object = {};
    while (n--) object[this.value()] = this.value();
    return object;
  }
  // An ext of `size` bytes: a timestamp (type -1) becomes a Date, another type `{type, data}`.
  ext(size) {
    const type = this.num("getInt8", 1);
    if (type !== -1) return { type, data: this.slice(size) };
    if (size === 4) return new Date(this.num("getUint32", 4) * 1e3);
    if (size === 8) {
      const high = this.num("getUint32", 4);
      return new Date(((high & 3) * 2 ** 32 + this.num("getUint32", 4)) * 1e3 + (high >>> 2) / 1e6);
    }
    if (size !== 12) throw invalid("timestamp");
    const nsec = this.num("getUint32", 4);
    return new Date(this.num("getBigInt64", 8) * 1e3 + nsec / 1e6);
  }
};
function frame(bytes, pos) {
  let size = 0;
  for (let i = 0; i < 5; i++) {
    if (pos + i >= bytes.length) return null;
    const byte = bytes[pos + i];
    size += (byte & 127) * 2 ** (7 * i);
    if (byte < 128) {
      if (size > 2147483647) break;
      const start = pos + i + 1;
      return start + size > bytes.length ? null : [start, start + size];
    }
  }
  throw invalid("length prefix: over 2 GB or longer than 5 bytes");
}
function framed(body) {
  const prefix = [];
  let n = body.length;
  do {
    prefix.push(n > 127 ? n & 127 | 128 : n);
    n >>>= 7;
  } while (n);
  return concat([Uint8Array.from(prefix), body]);
}
var defined = (object) => Object.fromEntries(Object.entries(object).filter((entry) => entry[1] != null));
function layout(m) {
  const head = [m.type, m.headers || {}, m.invocationId ?? null];
  switch (m.type) {
    case 1:
    case 4:
      return [...head, m.target, m.arguments || [], m.streamIds || []];
    case 2:
      return [...head, m.item];
    case 3:
      if (m.error != null) return [...head, 1, m.error];
      return m.result === void 0 ? [...head, 2] : [...head, 3, m.result];
    case 5:
      return head;
    case 7:
      return [7, m.error ?? null, ...m.allowReconnect === void 0 ? [] : [m.allowReconnect]];
    case 8:
    case 9:
      return [m.type, m.sequenceId];
  }
  return [m.type];
}
function message(a) {
  if (!Array.isArray(a) || typeof a[0] != "number") throw invalid("message: not an array with a type");
  const [type, headers] = a;
  if (type === 7) return defined({ type, error: a[1], allowReconnect: a[2] });
  if (type === 8 || type === 9) return { type, sequenceId: a[1] };
  if (type === 6 || type > 9) return { type };
  const m = defined({ type, headers: Object.keys(headers || {}).length ? headers : null, invocationId: a[2] });
  if (type === 1 || type === 4) {
    if (typeof a[3] != "string" || !Array.isArray(a[4])) throw invalid("invocation");
    return defined({ ...m, target: a[3], arguments: a[4], streamIds: a[5]?.length ? a[5] : null });
  }
  if (type === 2) return { ...m, item: a[3] };
  if (type === 3) {
    if (a[3] === 1) return { ...m, error: a[4] };
    if (a[3] === 3) return { ...m, result: a[4] };
    if (a[3] !== 2) throw invalid(`completion: result kind ${a[3]}`);
  }
  return m;
}
var MessagePackHubProtocol = class {
  constructor() {
    this.name = "messagepack";
    this.version = 1;
    this.transferFormat = "Binary";
  }
  /** One message as a length-prefixed MessagePack array. */
  write(m) {
    return framed(encode(layout(m)));
  }
  /** The messages that `data` completes; an incomplete tail waits in `state.rest` for the next call. */
  parse(data, state = {}) {
    let bytes = new Uint8Array(data);
    if (state.rest?.length) bytes = concat([state.rest, bytes]);
    const messages = [];
    let pos = 0;
    for (let body; body = frame(bytes, pos); pos = body[1]) messages.push(message(decode(bytes.subarray(...body))));
    state.rest = bytes.slice(pos);
    return messages;
  }
};
export {
  MessagePackHubProtocol,
  concat,
  decode,
  encode
};
