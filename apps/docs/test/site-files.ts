/**
 * The built site's pages, and a rebuild when .vitepress/dist is missing or older than what it is
 * built from (the docs sources, the reference generator, and the packages the playground bundles).
 */
import fs from "node:fs";
import path from "node:path";
import { demoModelDir } from "../scripts/demo-asset";

/** Every page of the built site as a route ("/guide/getting-started.html"), 404 page excluded. */
export function sitePages(dist: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "assets") walk(p);
      } else if (e.name.endsWith(".html") && e.name !== "404.html") {
        out.push(`/${path.relative(dist, p).split(path.sep).join("/")}`);
      }
    }
  };
  walk(dist);
  return out.sort();
}

function newestMtime(dir: string, skip: RegExp): number {
  let newest = 0;
  if (!fs.existsSync(dir)) return newest;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (skip.test(p)) continue;
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p, skip) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the site (pnpm run build) unless dist is newer than every source it depends on. */
export function ensureBuilt(docs: string, run: (cmd: string, args: string[]) => void): void {
  const stamp = path.join(docs, ".vitepress/dist/index.html");
  // what the build or the task runner writes itself is not a source
  const skip = /node_modules|[/\\](dist|cache|generated|test-output|tmp|test|reference|\.turbo)([/\\]|$)|[/\\]public[/\\]demo|\.test\.ts$/;
  const root = path.resolve(docs, "../..");
  const sources = Math.max(
    newestMtime(docs, skip),
    ...fs.readdirSync(path.join(root, "packages")).map((p) => newestMtime(path.join(root, "packages", p, "src"), skip)),
    newestMtime(demoModelDir(root), skip),
  );
  // a build made with another demo model folder (LOWBIT_DEMO_MODEL_DIR) is not this one
  const manifest = path.join(docs, ".vitepress/dist/demo/manifest.json");
  const wanted = fs.existsSync(path.join(demoModelDir(root), "model.bin"));
  const built = fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, "utf8")) as { available?: boolean }).available === true;
  if (fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= sources && wanted === built) return;
  run("pnpm", ["run", "build"]);
}
