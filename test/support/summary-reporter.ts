/**
 * Prints one plain closing line, "N passed, N failed" (", N skipped" when any), after the default
 * reporter's summary: a line any CI can read without parsing vitest's colours.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') {
          passed++;
        } else if (state === 'failed') {
          failed++;
        } else {
          skipped++;
        }
      }
      if (module.state() === 'failed' && module.children.size === 0) {
        failed++; // a file that could not even load its tests
      }
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
