/**
 * Runs after vitest in `npm test`: prints the plain closing line CI reads
 * ("N passed, N failed, N skipped") and, under CI=true, fails the run if any test was skipped:
 * tests that need root, CRIU, Podman or a registry may skip on a laptop, never in CI.
 */
import { readFileSync } from 'node:fs';

interface VitestJsonReport {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; assertionResults: { fullName: string; status: string }[] }[];
}

const reportPath = process.argv[2] ?? '.tmp/vitest-report.json';
const report = JSON.parse(readFileSync(reportPath, 'utf8')) as VitestJsonReport;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`\n${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
if (report.numTotalTests === 0) {
  console.error('no test ran');
  process.exitCode = 1;
}
if (process.env.CI === 'true' && skipped > 0) {
  const names = report.testResults.flatMap((file) =>
    file.assertionResults.filter((t) => t.status !== 'passed' && t.status !== 'failed').map((t) => `  ${file.name}: ${t.fullName}`),
  );
  console.error(`CI=true but ${skipped} test(s) skipped; CI must run every test:\n${names.join('\n')}`);
  process.exitCode = 1;
}
