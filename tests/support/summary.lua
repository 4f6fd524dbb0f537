-- busted output handler: the plain terminal output, then one line CI reads
-- ("N passed, N failed, N skipped"), and the same counts written to the file
-- named by PROVISION_TEST_COUNTS for scripts/run-tests.sh to add up.
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.plainTerminal'(options)

  busted.subscribe({ 'suite', 'end' }, function()
    local passed = handler.successesCount
    local failed = handler.failuresCount + handler.errorsCount
    local skipped = handler.pendingsCount
    local path = os.getenv('PROVISION_TEST_COUNTS')
    if path then
      local f = io.open(path, 'w')
      if f then f:write(passed, ' ', failed, ' ', skipped, '\n'); f:close() end
    end
    io.write(string.format('busted: %d passed, %d failed, %d skipped\n', passed, failed, skipped))
    return nil, true
  end)

  return handler
end
