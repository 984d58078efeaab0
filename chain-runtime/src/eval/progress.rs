//! The progress bar of a long evaluation (feature `progress`).

/// The progress bar on stderr (drawn only on a terminal).
#[cfg(feature = "progress")]
pub(super) fn progress_bar(show: bool, len: usize) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {pos}/{len} cases, {elapsed} elapsed, ~{eta} left",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("eval");
    Some(bar)
}

/// No progress bar without the `progress` feature.
#[cfg(not(feature = "progress"))]
pub(super) fn progress_bar(_show: bool, _len: usize) -> Option<NoBar> {
    None
}

/// Stands in for the progress bar without the `progress` feature.
#[cfg(not(feature = "progress"))]
pub(super) struct NoBar;

#[cfg(not(feature = "progress"))]
impl NoBar {
    pub(super) fn inc(&self, _: u64) {}
    pub(super) fn finish_and_clear(self) {}
}
