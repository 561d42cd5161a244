-- shell: a shell on an instance's host, in its web root (Tiki Manager's instance:access).
return {
  name = "shell",
  summary = "An interactive shell on an instance's host, in its web root, over tend's own SSH connection",
  description = [[
Opens the login shell of the instance's SSH user in its web root, over the connection
tend itself uses: the same key or password from the vault, the same host key check
(tend host trust first), no ssh_config needed. At a terminal you get a terminal on the
host (your TERM and window size); with stdin from a pipe, the shell reads its commands
from it:  echo 'php console.php cache:clear' | tend shell mytiki
The exit code is the shell's. For one command on many instances: tend exec.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
  },

  run = function(ctx, args)
    return args.instance:shell()
  end,
}
