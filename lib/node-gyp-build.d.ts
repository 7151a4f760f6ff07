// node-gyp-build ships no types: it returns the loaded addon's exports.
declare module 'node-gyp-build' {
  function load(dir: string): unknown;
  export default load;
}
