//! What every binary offers about itself: `completions SHELL` (clap_complete), the hidden
//! `man DIR` that `cargo xtask man` calls (clap_mangen: one page per command and subcommand),
//! and `parse`, which honours `--no-color`/`NO_COLOR` for clap's own help and errors.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};

/// Flags of `completions`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells with completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// Bash (`source <(slipway-deploy completions bash)`).
    Bash,
    /// Zsh (write it as `_slipway-deploy` into a directory of `$fpath`).
    Zsh,
    /// Fish (write it into `~/.config/fish/completions/`).
    Fish,
    /// PowerShell (`… | Out-String | Invoke-Expression`).
    Powershell,
}

/// Flags of the hidden `man`.
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Where to write the pages (created when missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Prints the completion script of `C` for `shell` on stdout.
pub fn completions<C: CommandFactory>(shell: Shell) {
    let mut command = C::command();
    let name = command.get_name().to_owned();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
}

/// Writes `C`'s man pages into `dir` (one per command, hidden ones left out); returns the
/// files written.
pub fn man<C: CommandFactory>(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let command = C::command();
    let mut written = Vec::new();
    let name = command.get_name().to_owned();
    write_pages(&command, &name, &name, dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    command: &clap::Command,
    name: &str,
    bin: &str,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    // The page's title is the full command name (`slipway-deploy-run`), as git's pages are.
    // Usage lines show the command as typed (`slipway-deploy check-scan`).
    let page = command.clone().bin_name(bin.to_owned());
    let mut buffer = Vec::new();
    clap_mangen::Man::new(page)
        .title(name.to_owned())
        .render(&mut buffer)
        .with_context(|| format!("rendering the man page of `{name}`"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buffer).with_context(|| format!("writing `{}`", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        let sub_name = sub.get_name();
        write_pages(
            sub,
            &format!("{name}-{sub_name}"),
            &format!("{bin} {sub_name}"),
            dir,
            written,
        )?;
    }
    Ok(())
}

/// Parses the command line as clap's `Parser::parse` does, with colours off when `--no-color`
/// is on it or `NO_COLOR` is set (no-color.org).
pub fn parse<C: CommandFactory + FromArgMatches>() -> C {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
        || std::env::args_os().any(|arg| arg == "--no-color");
    let mut command = C::command();
    if no_color {
        command = command.color(clap::ColorChoice::Never);
    }
    let matches = command.get_matches();
    C::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}
