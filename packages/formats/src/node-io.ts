/**
 * Node's file system and path modules, loaded on first use. The parsers and codecs of this package
 * run in browsers too; only the functions that take a path touch these, so a browser bundle that
 * never calls them never loads them.
 */
type NodeFs = typeof import("node:fs/promises");
type NodePath = typeof import("node:path");

let fsModule: Promise<NodeFs> | undefined;
let pathModule: Promise<NodePath> | undefined;

export function nodeFs(): Promise<NodeFs> {
  fsModule ??= import("node:fs/promises");
  return fsModule;
}

export function nodePath(): Promise<NodePath> {
  pathModule ??= import("node:path");
  return pathModule;
}

/** True for a name that is one plain path component (no separators, not "." or ".."). */
export function isPlainFileName(name: string): boolean {
  return name.length > 0 && name !== "." && name !== ".." && !/[/\\]/.test(name);
}
