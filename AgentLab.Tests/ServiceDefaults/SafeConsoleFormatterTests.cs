using System.Text;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace AgentLab.Tests.ServiceDefaults;

/// <summary>
/// The console formatter AddServiceDefaults installs, driven through real loggers (source-generated messages, scopes,
/// exceptions): user text with CR, LF and ANSI escapes stays inside its record, escaped.
/// </summary>
public sealed class SafeConsoleFormatterTests
{
    private const string Injection = "\r\nFAKE 200 OK\u001b[31m";
    private const string Escaped = @"\r\nFAKE 200 OK\u001b[31m";

    [Fact]
    public void Message_WithCrLfAndAnsiEscape_IsOneEscapedLineUnderTheSimpleFormattersHeader()
    {
        using var console = new FormatterConsole();

        console.Logger("AgentLab.Backend.Executions").PromptSeen(Injection);

        var lines = console.Lines();
        Assert.Equal(["info: AgentLab.Backend.Executions[4242]", $"      Prompt: {Escaped} (end)"], lines);
        Assert.DoesNotContain('\u001b', console.Output);
        Assert.DoesNotContain(lines, l => l.StartsWith("FAKE", StringComparison.Ordinal));
    }

    [Fact]
    public void ScopeValues_WithControlCharacters_AreEscaped()
    {
        using var console = new FormatterConsole(o => o.IncludeScopes = true);
        var logger = console.Logger("Test");

        using (logger.BeginScope("Graph {GraphName}", "g\nwarn: forged\u001b[2J"))
            logger.PromptSeen("ok");

        var lines = console.Lines();
        Assert.Equal(3, lines.Length);
        Assert.Equal(@"      => Graph g\nwarn: forged\u001b[2J ", lines[1]);
        Assert.DoesNotContain(lines, l => l.StartsWith("warn", StringComparison.Ordinal));
        Assert.DoesNotContain('\u001b', console.Output);
    }

    [Fact]
    public void SingleLine_WithInjectionAndAnException_IsExactlyOneLine()
    {
        using var console = new FormatterConsole(o => o.SingleLine = true);

        console.Logger("Test").Failed(new InvalidOperationException("bad" + Injection), Injection);

        var line = Assert.Single(console.Lines());
        Assert.StartsWith("fail: Test[4243] Failed: " + Escaped, line);
        Assert.Contains("System.InvalidOperationException: bad" + Escaped, line);
        Assert.DoesNotContain('\u001b', console.Output);
    }

    [Fact]
    public void Exception_KeepsItsStackTraceLines_EachIndented_WithTheMessageEscaped()
    {
        using var console = new FormatterConsole();

        console.Logger("Test").Failed(Thrown(), "x");

        var lines = console.Lines();
        Assert.Equal("fail: Test[4243]", lines[0]);
        Assert.True(lines.Length > 3, string.Join("\n", lines));
        Assert.All(lines.Skip(1), l => Assert.StartsWith("      ", l));
        Assert.Contains(lines, l => l.Contains("System.InvalidOperationException: bad" + Escaped, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public void Colors_OnlyTheFormattersOwnSequencesAroundTheLevel_TheMessagesAreEscaped()
    {
        using var console = new FormatterConsole(o => o.ColorBehavior = LoggerColorBehavior.Enabled);

        console.Logger("Test").PromptSeen(Injection);

        var lines = console.Lines();
        Assert.Equal(2, lines.Length);
        Assert.Contains("\u001b[32minfo\u001b[39m\u001b[22m\u001b[49m: Test[4242]", lines[0]);
        Assert.Equal($"      Prompt: {Escaped} (end)", lines[1]);
    }

    [Theory]
    [InlineData("tab\there", @"tab\there")]
    [InlineData("nul\0", @"nul\u0000")]
    [InlineData("csi\u009b31m", @"csi\u009b31m")]
    [InlineData("bidi\u202eevil", @"bidi\u202eevil")]
    [InlineData("line\u2028sep", @"line\u2028sep")]
    [InlineData("plain ünïcödé ✓ text", "plain ünïcödé ✓ text")]
    public void Escape_ControlAndInvisibleOrderingCharacters_AreWrittenAsEscapes(string text, string expected) =>
        Assert.Equal(expected, LogText.Escape(text));

    [Fact]
    public void AddServiceDefaults_SelectsTheFormatter_UnlessConfigurationChoseJson()
    {
        using var plain = Host(null);
        using var json = Host("json");
        using var simple = Host("simple");

        Assert.Equal(SafeConsoleFormatter.FormatterName, plain.Services.GetRequiredService<IOptions<ConsoleLoggerOptions>>().Value.FormatterName);
        Assert.Equal("json", json.Services.GetRequiredService<IOptions<ConsoleLoggerOptions>>().Value.FormatterName);
        Assert.Equal(SafeConsoleFormatter.FormatterName, simple.Services.GetRequiredService<IOptions<ConsoleLoggerOptions>>().Value.FormatterName);
        Assert.Contains(plain.Services.GetServices<ConsoleFormatter>(), f => f is SafeConsoleFormatter);
    }

    private static IHost Host(string? formatter)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Production });
        if (formatter is not null)
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console:FormatterName"] = formatter });
        builder.AddServiceDefaults();
        return builder.Build();
    }

    private static Exception Thrown()
    {
        try
        {
            throw new InvalidOperationException("bad" + Injection);
        }
        catch (InvalidOperationException ex)
        {
            return ex;
        }
    }
}

/// <summary>Source-generated messages, as the services write them.</summary>
internal static partial class FormatterTestLog
{
    [LoggerMessage(4242, LogLevel.Information, "Prompt: {Prompt} (end)")]
    public static partial void PromptSeen(this ILogger logger, string prompt);

    [LoggerMessage(4243, LogLevel.Error, "Failed: {What}")]
    public static partial void Failed(this ILogger logger, Exception exception, string what);
}

/// <summary>
/// Loggers from a real <see cref="LoggerFactory"/> whose one provider writes every record through the
/// <see cref="SafeConsoleFormatter"/> that <see cref="SafeConsoleFormatterExtensions.AddSafeConsoleFormatter"/>
/// registers, into memory (the console logger would write to the process's shared console).
/// </summary>
internal sealed class FormatterConsole : ILoggerProvider, ISupportExternalScope
{
    private readonly ServiceProvider services;
    private readonly ILoggerFactory factory;
    private readonly ConsoleFormatter formatter;
    private readonly StringBuilder output = new();
    private IExternalScopeProvider? scopes;

    public FormatterConsole(Action<SafeConsoleFormatterOptions>? configure = null)
    {
        var collection = new ServiceCollection();
        collection.AddLogging(l => l.AddSafeConsoleFormatter().SetMinimumLevel(LogLevel.Trace));
        collection.Configure<SafeConsoleFormatterOptions>(o =>
        {
            o.ColorBehavior = LoggerColorBehavior.Disabled;
            configure?.Invoke(o);
        });
        services = collection.BuildServiceProvider();
        formatter = services.GetServices<ConsoleFormatter>().Single(f => f.Name == SafeConsoleFormatter.FormatterName);
        factory = services.GetRequiredService<ILoggerFactory>();
        factory.AddProvider(this);
    }

    public string Output
    {
        get { lock (output) return output.ToString(); }
    }

    /// <summary>The output split as a terminal or a log shipper splits it: on CR, LF and CRLF.</summary>
    public string[] Lines() => Output.Split(["\r\n", "\n", "\r"], StringSplitOptions.None)[..^1];

    public ILogger Logger(string category) => factory.CreateLogger(category);

    public ILogger CreateLogger(string categoryName) => new Writer(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => scopes = scopeProvider;

    public void Dispose() => services.Dispose();

    private sealed class Writer(FormatterConsole console, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => console.scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            using var writer = new StringWriter();
            console.formatter.Write(new LogEntry<TState>(logLevel, category, eventId, state, exception, formatter), console.scopes, writer);
            lock (console.output)
                console.output.Append(writer);
        }
    }
}
