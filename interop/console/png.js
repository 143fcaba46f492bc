// SPDX-License-Identifier: Apache-2.0
// A small PNG reader for the console test's screenshots (required, not run): decodes 8-bit
// non-interlaced truecolour or greyscale PNGs (what Chromium writes) with node's zlib and tells
// the size and how many distinct colours they hold, so that a blank page is caught.
'use strict';

const zlib = require('zlib');

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function paeth(a, b, c) {
    const p = a + b - c;
    const pa = Math.abs(p - a);
    const pb = Math.abs(p - b);
    const pc = Math.abs(p - c);
    if (pa <= pb && pa <= pc) {
        return a;
    }
    return pb <= pc ? b : c;
}

// decode(buf) -> {width, height, channels, pixels: Buffer of width*height*channels}. Throws on
// anything else than the formats above.
function decode(buf) {
    if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) {
        throw new Error('not a PNG file');
    }
    let off = 8;
    let hdr = null;
    const idat = [];
    while (off + 12 <= buf.length) {
        const len = buf.readUInt32BE(off);
        const type = buf.toString('latin1', off + 4, off + 8);
        const data = buf.subarray(off + 8, off + 8 + len);
        if (type === 'IHDR') {
            hdr = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8],
                    colour: data[9], interlace: data[12] };
        } else if (type === 'IDAT') {
            idat.push(data);
        } else if (type === 'IEND') {
            break;
        }
        off += 12 + len;
    }
    if (!hdr) {
        throw new Error('PNG without IHDR');
    }
    const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[hdr.colour];
    if (hdr.depth !== 8 || !channels || hdr.interlace !== 0) {
        throw new Error(`unsupported PNG: depth ${hdr.depth}, colour type ${hdr.colour}, interlace ${hdr.interlace}`);
    }
    const raw = zlib.inflateSync(Buffer.concat(idat));
    const stride = hdr.width * channels;
    if (raw.length !== (stride + 1) * hdr.height) {
        throw new Error(`PNG data is ${raw.length} bytes, expected ${(stride + 1) * hdr.height}`);
    }
    const px = Buffer.alloc(stride * hdr.height);
    for (let y = 0; y < hdr.height; y++) {
        const filter = raw[y * (stride + 1)];
        const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
        const out = px.subarray(y * stride, (y + 1) * stride);
        const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
        for (let i = 0; i < stride; i++) {
            const a = i >= channels ? out[i - channels] : 0;
            const b = prev ? prev[i] : 0;
            const c = prev && i >= channels ? prev[i - channels] : 0;
            let v = line[i];
            switch (filter) {
            case 0: break;
            case 1: v += a; break;
            case 2: v += b; break;
            case 3: v += (a + b) >> 1; break;
            case 4: v += paeth(a, b, c); break;
            default: throw new Error(`bad PNG filter ${filter} on line ${y}`);
            }
            out[i] = v & 0xff;
        }
    }
    return { width: hdr.width, height: hdr.height, channels, pixels: px };
}

// stats(buf) -> {width, height, colours: distinct RGB values, top: share of the commonest one}.
function stats(buf) {
    const img = decode(buf);
    const counts = new Map();
    const n = img.width * img.height;
    for (let i = 0; i < n; i++) {
        const p = i * img.channels;
        const key = img.channels >= 3
            ? (img.pixels[p] << 16) | (img.pixels[p + 1] << 8) | img.pixels[p + 2]
            : img.pixels[p];
        counts.set(key, (counts.get(key) || 0) + 1);
    }
    let top = 0;
    for (const c of counts.values()) {
        top = Math.max(top, c);
    }
    return { width: img.width, height: img.height, colours: counts.size, top: top / n };
}

module.exports = { decode, stats };
