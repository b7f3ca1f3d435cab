#!/usr/bin/env node
// Compiles contracts/TestToken.sol with solc-js and writes artifacts/TestToken.json
// as {"abi": [...], "bytecode": "0x..."}.
//
// The artifact is committed so the Rust tests never need solc at run time. The
// output is deterministic (pinned compiler, fixed source name and settings), so a
// rebuild from the same source is byte-identical.
//
//   node chain/build.js           rebuild the artifact
//   node chain/build.js --check   exit 1 if the committed artifact is stale
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const solc = require('solc');

const ROOT = __dirname;
const SOURCE_NAME = 'contracts/TestToken.sol';
const CONTRACT = 'TestToken';
const ARTIFACT = path.join(ROOT, 'artifacts', `${CONTRACT}.json`);
// Must match the exact version pinned in package.json (and so package-lock.json).
const EXPECTED_SOLC = require('./package.json').devDependencies.solc;

function compile() {
  const version = solc.version(); // e.g. "0.8.28+commit.7893614a.Emscripten.clang"
  if (!version.startsWith(`${EXPECTED_SOLC}+`)) {
    throw new Error(`solc ${version} is installed but package.json pins ${EXPECTED_SOLC}; run npm ci --prefix chain`);
  }
  const input = {
    language: 'Solidity',
    sources: {
      [SOURCE_NAME]: { content: fs.readFileSync(path.join(ROOT, SOURCE_NAME), 'utf8') },
    },
    settings: {
      // paris: no PUSH0, so the same bytecode also runs on ganache 7.
      evmVersion: 'paris',
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const diagnostics = output.errors || [];
  for (const d of diagnostics) {
    process.stderr.write(d.formattedMessage || `${d.severity}: ${d.message}\n`);
  }
  if (diagnostics.some((d) => d.severity === 'error')) {
    throw new Error('compilation failed');
  }
  const contract = output.contracts[SOURCE_NAME][CONTRACT];
  const artifact = { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
  return `${JSON.stringify(artifact, null, 2)}\n`;
}

function main() {
  const text = compile();
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(ARTIFACT) ? fs.readFileSync(ARTIFACT, 'utf8') : '';
    if (current !== text) {
      console.error(`${path.relative(process.cwd(), ARTIFACT)} is stale; run node chain/build.js`);
      process.exit(1);
    }
    console.log(`${path.relative(process.cwd(), ARTIFACT)} is up to date`);
    return;
  }
  fs.mkdirSync(path.dirname(ARTIFACT), { recursive: true });
  fs.writeFileSync(ARTIFACT, text);
  console.log(`wrote ${path.relative(process.cwd(), ARTIFACT)} (solc ${solc.version()})`);
}

try {
  main();
} catch (e) {
  console.error(`build.js: ${e.message}`);
  process.exit(1);
}
