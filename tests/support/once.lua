-- Start what a block of tests needs on first use, from a before_each, so
-- that a failure counts once per test:
--
--   before_each(once(function() srv = start_server() end))
--
-- The first call runs `start`; later calls return at once, or, when it
-- failed, raise the same error again. busted skips every test of a block
-- whose `setup` fails and counts one error, so the closing count would hide
-- them; a failing before_each fails each test of the block on its own.
return function(start, what)
  local done, failed
  return function()
    if failed then error(failed, 0) end
    if done then return end
    local ok, err = pcall(start)
    if not ok then
      failed = (what and what .. ': ' or '') .. tostring(err)
      error(failed, 0)
    end
    done = true
  end
end
