// The abi entry point as plain data properties: TypeScript compiles re-exports (`export *`) to getters,
// and a getter is a call at every use of an imported name (it showed in the request path's profile).
'use strict';
const abi = require('../dist/src/abi.js');
module.exports = Object.defineProperty(Object.assign({}, abi), '__esModule', { value: true });
