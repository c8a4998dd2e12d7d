// Tests are compiled by `tsc -b` along with the code and run as plain JavaScript:
// worker threads need real .js files, and skipping a transform keeps jest fast.
/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform: {},
      testMatch: ['<rootDir>/packages/*/dist/test/**/*.test.js'],
      testPathIgnorePatterns: ['/node_modules/', '\\.e2e\\.test\\.js$'],
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform: {},
      testMatch: ['<rootDir>/packages/*/dist/test/**/*.e2e.test.js'],
    },
  ],
};
