// The shared test helpers live in test/support/ (see support/index.ts); this
// path keeps working for suites that still import it.
export * from './support/index';
