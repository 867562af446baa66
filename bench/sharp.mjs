// sharp as a user's code would thumbnail: .rotate() (EXIF orientation), 200 px wide and never
// upscaled, alpha flattened on white, mozjpeg q80. Single thread, no cache.
//   node sharp.mjs serve      one request a line on stdin: {"file": ..., "out": ...}
//                             -> {"ms": wall time of the thumbnail} a line on stdout
//   node sharp.mjs once IN OUT  one thumbnail (cold-process runs)
import fs from "node:fs";
import readline from "node:readline";
import sharp from "sharp";

sharp.concurrency(1);
sharp.cache(false);
const thumbnail = (buf) =>
  sharp(buf)
    .rotate()
    .resize(200, null, { withoutEnlargement: true })
    .flatten({ background: "#ffffff" })
    .jpeg({ quality: 80, mozjpeg: true })
    .toBuffer();
const [mode, ...args] = process.argv.slice(2);

if (mode === "once") {
  fs.writeFileSync(args[1], await thumbnail(fs.readFileSync(args[0])));
} else if (mode === "serve") {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const request = JSON.parse(line);
    const buf = fs.readFileSync(request.file);
    const start = process.hrtime.bigint();
    const out = await thumbnail(buf);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    fs.writeFileSync(request.out, out);
    process.stdout.write(JSON.stringify({ ms }) + "\n");
  }
} else {
  throw new Error("usage: node sharp.mjs serve | once IN OUT");
}
