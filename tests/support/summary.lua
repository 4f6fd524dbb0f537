-- busted output handler: the plain terminal output, then one line CI reads
-- ("N passed, N failed, N skipped"), and the same counts written to the file
-- named by PROVISION_TEST_COUNTS for scripts/run-tests.sh to add up.
--
-- A `setup` (or lazy_setup) that errors makes busted skip every test of its
-- block and count one error; here each test it skipped counts as failed too,
-- so the closing line never hides them. busted has not read a nested
-- describe of that block yet (it reads one when it runs it), so each such
-- describe counts as one: the count is a floor, said so in a line of its own.
-- (The specs that need servers start them from a before_each, support.once,
-- so that each test fails on its own and the count is exact.)
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.plainTerminal'(options)

  local SETUPS = { setup = true, strict_setup = true, lazy_setup = true }
  local not_run, floor = 0, false
  local notes = {}

  local function count_tests(block)
    local n = 0
    for _, child in ipairs(busted.children(block) or {}) do
      if child.descriptor == 'it' then
        n = n + 1
      elseif child.descriptor == 'describe' then
        local inner = count_tests(child)
        if inner == 0 then inner, floor = 1, true end
        n = n + inner
      end
    end
    return n
  end

  local function setup_failed(element, parent)
    if not (element and SETUPS[element.descriptor]) or not parent then return nil, true end
    local n = count_tests(parent)
    not_run = not_run + n
    notes[#notes + 1] = ('%s of "%s" failed: %d test(s) did not run, counted as failed')
      :format(element.descriptor, tostring(parent.name or parent.descriptor), n)
    return nil, true
  end
  busted.subscribe({ 'error' }, setup_failed)
  busted.subscribe({ 'failure' }, setup_failed)

  busted.subscribe({ 'suite', 'end' }, function()
    local passed = handler.successesCount
    local failed = handler.failuresCount + handler.errorsCount + not_run
    local skipped = handler.pendingsCount
    local path = os.getenv('PROVISION_TEST_COUNTS')
    if path then
      local f = io.open(path, 'w')
      if f then f:write(passed, ' ', failed, ' ', skipped, '\n'); f:close() end
    end
    for _, note in ipairs(notes) do io.write('busted: ', note, '\n') end
    if floor then
      io.write('busted: a nested describe of a failed setup counts as one test: the failed count is a floor\n')
    end
    io.write(string.format('busted: %d passed, %d failed, %d skipped\n', passed, failed, skipped))
    return nil, true
  end)

  return handler
end
