// The seed's thumbnailer: sharp(buf).resize(200).jpeg({ mozjpeg: true }), single thread, warm.
//   node sharp.mjs warm OUT_DIR ITERATIONS FILE...   -> {"file": median_ms} on stdout
//   node sharp.mjs once IN OUT                       -> one thumbnail (cold-process runs)
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";

sharp.concurrency(1);
sharp.cache(false);
const thumbnail = (buf) => sharp(buf).resize(200).jpeg({ quality: 80, mozjpeg: true }).toBuffer();
const [mode, ...args] = process.argv.slice(2);

if (mode === "once") {
  fs.writeFileSync(args[1], await thumbnail(fs.readFileSync(args[0])));
} else {
  const [outDir, iterations, ...files] = args;
  const results = {};
  for (const file of files) {
    const buf = fs.readFileSync(file);
    for (let i = 0; i < 2; i++) await thumbnail(buf);
    const times = [];
    let out;
    for (let i = 0; i < Number(iterations); i++) {
      const start = process.hrtime.bigint();
      out = await thumbnail(buf);
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);
    fs.writeFileSync(path.join(outDir, path.basename(file) + ".sharp.jpg"), out);
    results[path.basename(file)] = times[Math.floor(times.length / 2)];
  }
  console.log(JSON.stringify(results));
}
