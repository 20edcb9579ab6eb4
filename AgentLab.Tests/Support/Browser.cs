using Microsoft.Playwright;

namespace AgentLab.Tests.Support;

/// <summary>
/// Debian's Chromium driven by Playwright (no browser download is possible here: PLATFORM.md). .ci/run installs it;
/// locally a test without it is skipped, under CI=true it fails.
/// </summary>
public static class Browser
{
    public const string ChromiumPath = "/usr/bin/chromium";

    /// <summary>The flags PLATFORM.md gives for a headless Chromium as root on a machine without a GPU or network.</summary>
    private static readonly string[] Flags =
    [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-quic", "--disable-sync",
    ];

    /// <summary>Skips the calling test when Chromium is not installed, except under CI=true, where that is a broken setup.</summary>
    public static void SkipUnlessAvailable()
    {
        if (File.Exists(ChromiumPath))
            return;
        Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase),
            $"{ChromiumPath} is missing, and CI=true: .ci/run must `apt-get install -y chromium`.");
        Assert.Skip($"{ChromiumPath} is not installed (sudo apt-get install chromium).");
    }

    /// <summary>Starts Playwright's driver and a headless Chromium (call <see cref="SkipUnlessAvailable"/> first).</summary>
    public static async Task<BrowserSession> LaunchAsync(CancellationToken ct)
    {
        var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(30), ct);
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new()
            {
                ExecutablePath = ChromiumPath,
                Headless = true,
                Args = Flags,
                Timeout = 30_000,
            }).WaitAsync(TimeSpan.FromSeconds(40), ct);
            return new BrowserSession(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }
}

/// <summary>One Chromium; pages open in contexts of their own so tests do not share cookies or storage.</summary>
public sealed class BrowserSession(IPlaywright playwright, IBrowser browser) : IAsyncDisposable
{
    public IBrowser Browser => browser;

    /// <summary>
    /// A fresh page at <paramref name="url"/>. Everything the page logs as an error (a CSP violation, an uncaught
    /// exception, a failed module) is collected in <see cref="BrowserPage.Errors"/> so tests can say there was none.
    /// </summary>
    public async Task<BrowserPage> OpenAsync(string url, CancellationToken ct)
    {
        var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 900 } }).WaitAsync(TimeSpan.FromSeconds(20), ct);
        var page = await context.NewPageAsync().WaitAsync(TimeSpan.FromSeconds(20), ct);
        var result = new BrowserPage(context, page);
        await page.GotoAsync(url, new() { Timeout = 20_000 }).WaitAsync(TimeSpan.FromSeconds(25), ct);
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        await browser.CloseAsync();
        playwright.Dispose();
    }
}

/// <summary>A page and the errors it reported.</summary>
public sealed class BrowserPage : IAsyncDisposable
{
    private readonly IBrowserContext context;
    private readonly List<string> errors = [];

    public BrowserPage(IBrowserContext context, IPage page)
    {
        this.context = context;
        Page = page;
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
                lock (errors) errors.Add(message.Text);
        };
        page.PageError += (_, error) =>
        {
            lock (errors) errors.Add(error);
        };
    }

    public IPage Page { get; }

    public IReadOnlyList<string> Errors
    {
        get { lock (errors) return [.. errors]; }
    }

    public ValueTask DisposeAsync() => new(context.CloseAsync());
}
