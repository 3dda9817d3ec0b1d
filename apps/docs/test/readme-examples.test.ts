/**
 * The packages' README examples are real code: every ```ts block of the READMEs below is
 * type-checked, on its own, against the workspace packages' sources (TypeScript's compiler API over
 * an in-memory host, the repository's strict compiler options, `@lowbit/*` mapped to
 * packages/<name>/src). A block that uses a value it never defines or imports (`model`, `data`,
 * `stream`), calls a function that does not exist or passes the wrong options fails here, named by
 * README and block number. The READMEs that users read on npm must also link absolutely (relative
 * links break there), and their links into the docs app must name pages that exist.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(docs, "../..");

/** READMEs whose examples are checked. */
const PACKAGES = ["tensor", "formats", "int8", "int4", "runtime", "calibration", "gptq", "awq", "qat"] as const;

/** READMEs kept self-contained, absolutely linked and linked to the docs (the others are checked for examples only). */
const LINK_CHECKED = ["formats", "runtime", "calibration", "gptq", "awq", "qat"] as const;

/**
 * Blocks known not to type-check yet, as "<package>#<block number>" (1-based, counting ```ts blocks
 * of that README). Each entry is a README example to fix; empty this list as they are fixed.
 */
const KNOWN_FAILING_BLOCKS: readonly string[] = [];

const REPO_BLOB = "https://github.com/lowbit-dev/lowbit/blob/main/";

interface Block {
  pkg: string;
  index: number;
  /** 1-based line of the opening fence in the README. */
  line: number;
  code: string;
}

/** The ```ts / ```typescript blocks of a Markdown file, in order. */
export function tsBlocks(pkg: string, markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split("\n");
  let open: { line: number; body: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (!open) {
      if (/^```(ts|typescript)\s*$/.test(l.trim())) open = { line: i + 1, body: [] };
    } else if (l.trim() === "```") {
      out.push({ pkg, index: out.length + 1, line: open.line, code: open.body.join("\n") });
      open = undefined;
    } else {
      open.body.push(l);
    }
  }
  return out;
}

function readme(pkg: string): string {
  return fs.readFileSync(path.join(root, "packages", pkg, "README.md"), "utf8");
}

const blocks = PACKAGES.flatMap((pkg) => tsBlocks(pkg, readme(pkg)));
/** Virtual files live under apps/docs, so `node:*` types resolve from its node_modules. */
const fileOf = (b: Block) => path.join(docs, "test", "__readme__", `${b.pkg}-block-${b.index}.ts`);

let diagnostics: Map<string, string[]> | undefined;

/** Type-checks every block in one program (shared package sources) and returns each file's errors. */
function check(): Map<string, string[]> {
  if (diagnostics) return diagnostics;
  const virtual = new Map(blocks.map((b) => [fileOf(b), `${b.code}\nexport {};\n`]));
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    customConditions: ["@lowbit/source"],
    types: ["node"],
    strict: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: true,
    esModuleInterop: true,
    resolveJsonModule: true,
    noEmit: true,
    paths: { "@lowbit/*": [path.join(root, "packages/*/src/index.ts")] },
  };
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) => {
    const text = virtual.get(path.resolve(name));
    return text !== undefined ? ts.createSourceFile(name, text, lang, true) : getSourceFile(name, lang, onError, create);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => virtual.has(path.resolve(name)) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => virtual.get(path.resolve(name)) ?? readFile(name);
  const program = ts.createProgram([...virtual.keys()], options, host);
  const result = new Map<string, string[]>();
  for (const b of blocks) {
    const file = fileOf(b);
    const sf = program.getSourceFile(file);
    if (!sf) throw new Error(`no source file for ${file}`);
    const diags = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    result.set(
      file,
      diags.map((d) => {
        const where = d.start !== undefined ? d.file?.getLineAndCharacterOfPosition(d.start) : undefined;
        // report lines of the README, not of the block
        const at = where ? `README line ${b.line + 1 + where.line}` : "README";
        return `${at}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
      }),
    );
  }
  diagnostics = result;
  return result;
}

describe("README examples type-check against the workspace packages", () => {
  it("finds examples in every README", () => {
    for (const pkg of PACKAGES) expect(blocks.filter((b) => b.pkg === pkg).length, `packages/${pkg}/README.md has no \`\`\`ts block`).toBeGreaterThan(0);
    for (const id of KNOWN_FAILING_BLOCKS) expect(blocks.some((b) => `${b.pkg}#${b.index}` === id), `KNOWN_FAILING_BLOCKS names ${id}, which is not a block`).toBe(true);
  });

  it.each(blocks.map((b): [string, Block] => [`packages/${b.pkg}/README.md block ${b.index} (line ${b.line})`, b]))("%s", (_name, b) => {
    const errors = check().get(fileOf(b)) ?? [];
    if (KNOWN_FAILING_BLOCKS.includes(`${b.pkg}#${b.index}`)) {
      // still listed: make sure the entry is still needed, so the list only shrinks
      expect(errors.length, `packages/${b.pkg}/README.md block ${b.index} now type-checks: remove "${b.pkg}#${b.index}" from KNOWN_FAILING_BLOCKS`).toBeGreaterThan(0);
      return;
    }
    expect(errors, `packages/${b.pkg}/README.md block ${b.index} (line ${b.line}) does not type-check:\n${errors.join("\n")}`).toEqual([]);
  });
});

describe("README links work on npm", () => {
  it.each(LINK_CHECKED.map((pkg): [string, string] => [`packages/${pkg}/README.md links absolutely, and to docs pages that exist`, pkg]))("%s", (_name, pkg) => {
    const md = readme(pkg);
    const links = [...md.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    const relative = links.filter((l) => !/^(https?:|mailto:|#)/.test(l));
    expect(relative, `relative links in packages/${pkg}/README.md break on npm`).toEqual([]);
    const docsLinks = links.filter((l) => l.startsWith(`${REPO_BLOB}apps/docs/`));
    expect(docsLinks.length, `packages/${pkg}/README.md links to no docs page`).toBeGreaterThan(0);
    for (const l of docsLinks) {
      const file = l.slice(REPO_BLOB.length).replace(/#.*$/, "");
      expect(fs.existsSync(path.join(root, file)), `packages/${pkg}/README.md links to ${l}, which does not exist`).toBe(true);
    }
    for (const l of links.filter((x) => x.startsWith(REPO_BLOB) && !x.startsWith(`${REPO_BLOB}apps/docs/`))) {
      const file = l.slice(REPO_BLOB.length).replace(/#.*$/, "");
      expect(fs.existsSync(path.join(root, file)), `packages/${pkg}/README.md links to ${l}, which does not exist`).toBe(true);
    }
  });
});
