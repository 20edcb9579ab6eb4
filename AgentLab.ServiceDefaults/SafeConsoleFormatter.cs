using System.Buffers;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace AgentLab.ServiceDefaults;

/// <summary>
/// Options of <see cref="SafeConsoleFormatter"/>: the simple formatter's (<c>Logging:Console:FormatterOptions</c>:
/// <c>SingleLine</c>, <c>IncludeScopes</c>, <c>TimestampFormat</c>, <c>UseUtcTimestamp</c>, <c>ColorBehavior</c>).
/// </summary>
public sealed class SafeConsoleFormatterOptions : SimpleConsoleFormatterOptions;

/// <summary>
/// The simple console formatter's look (<c>info: Category[1001]</c>, then the message indented) with one guarantee
/// the simple one lacks: text that came from a user cannot start a new line or drive the terminal. CR, LF, ESC and
/// every other C0/C1 control character (and Unicode line separators and bidi overrides) in the message and in scope
/// values are written escaped (<c>\r</c>, <c>\n</c>, <c>\u001b</c>), so a prompt holding
/// <c>"\r\nFAKE 200 OK\u001b[31m"</c> stays inside its own record. Exception text keeps its line breaks (stack
/// traces stay readable), each line indented so it can never pass for a record of its own.
/// </summary>
public sealed class SafeConsoleFormatter : ConsoleFormatter, IDisposable
{
    /// <summary>The name to select it with (<c>Logging:Console:FormatterName</c>); AddServiceDefaults selects it.</summary>
    public const string FormatterName = "agentlab";

    private const string Padding = "      ";
    private const string DefaultForeground = "\x1B[39m\x1B[22m";
    private const string DefaultBackground = "\x1B[49m";

    private readonly IDisposable? reload;
    private SafeConsoleFormatterOptions options;

    public SafeConsoleFormatter(IOptionsMonitor<SafeConsoleFormatterOptions> options) : base(FormatterName)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options.CurrentValue;
        reload = options.OnChange(o => this.options = o);
    }

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        var exception = logEntry.Exception;
        if (exception is null && message is null)
            return;
        var settings = options;
        var singleLine = settings.SingleLine;

        if (settings.TimestampFormat is { } format)
        {
            var now = settings.UseUtcTimestamp ? DateTimeOffset.UtcNow : DateTimeOffset.Now;
            textWriter.Write(now.ToString(format, CultureInfo.InvariantCulture));
        }
        WriteLevel(textWriter, logEntry.LogLevel, UseColor(settings.ColorBehavior));
        textWriter.Write(": ");
        LogText.WriteEscaped(textWriter, logEntry.Category);
        textWriter.Write('[');
        textWriter.Write(logEntry.EventId.Id.ToString(CultureInfo.InvariantCulture));
        textWriter.Write(']');
        if (!singleLine)
            textWriter.WriteLine();

        if (settings.IncludeScopes && scopeProvider is not null)
            WriteScopes(textWriter, scopeProvider, singleLine);

        if (!string.IsNullOrEmpty(message))
        {
            textWriter.Write(singleLine ? " " : Padding);
            LogText.WriteEscaped(textWriter, message);
            if (!singleLine)
                textWriter.WriteLine();
        }

        if (exception is not null)
            WriteException(textWriter, ExceptionText(exception), singleLine);
        if (singleLine)
            textWriter.WriteLine();
    }

    private static void WriteScopes(TextWriter writer, IExternalScopeProvider scopes, bool singleLine)
    {
        var any = false;
        scopes.ForEachScope((scope, state) =>
        {
            if (!any)
            {
                state.Write(singleLine ? " " : Padding);
                any = true;
            }
            state.Write("=> ");
            LogText.WriteEscaped(state, scope?.ToString() ?? "");
            state.Write(' ');
        }, writer);
        if (any && !singleLine)
            writer.WriteLine();
    }

    /// <summary>
    /// <see cref="Exception.ToString"/> with the messages (its own and its inner exceptions') escaped: a message may
    /// quote user input, and only the stack trace's own line breaks are kept.
    /// </summary>
    private static string ExceptionText(Exception exception)
    {
        var text = exception.ToString();
        var pending = new Stack<Exception>([exception]);
        var seen = 0;
        while (pending.TryPop(out var current) && seen++ < 32)
        {
            if (current.Message.Length > 0 && LogText.NeedsEscaping(current.Message))
                text = text.Replace(current.Message, LogText.Escape(current.Message), StringComparison.Ordinal);
            if (current is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                    pending.Push(inner);
            }
            else if (current.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
        return text;
    }

    /// <summary>Each line of the exception text indented (or, on one line, joined by spaces), its control characters escaped.</summary>
    private static void WriteException(TextWriter writer, string text, bool singleLine)
    {
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            writer.Write(singleLine ? " " : Padding);
            LogText.WriteEscaped(writer, line);
            if (!singleLine)
                writer.WriteLine();
        }
    }

    private static void WriteLevel(TextWriter writer, LogLevel level, bool color)
    {
        var (text, foreground, background) = level switch
        {
            LogLevel.Trace => ("trce", "\x1B[37m", "\x1B[40m"),
            LogLevel.Debug => ("dbug", "\x1B[37m", "\x1B[40m"),
            LogLevel.Information => ("info", "\x1B[32m", "\x1B[40m"),
            LogLevel.Warning => ("warn", "\x1B[1m\x1B[33m", "\x1B[40m"),
            LogLevel.Error => ("fail", "\x1B[30m", "\x1B[41m"),
            LogLevel.Critical => ("crit", "\x1B[1m\x1B[37m", "\x1B[41m"),
            _ => ("none", "", ""),
        };
        if (!color || foreground.Length == 0)
        {
            writer.Write(text);
            return;
        }
        // The only escape sequences this formatter writes are its own, around the level.
        writer.Write(background);
        writer.Write(foreground);
        writer.Write(text);
        writer.Write(DefaultForeground);
        writer.Write(DefaultBackground);
    }

    private static bool UseColor(LoggerColorBehavior behavior) => behavior switch
    {
        LoggerColorBehavior.Enabled => true,
        LoggerColorBehavior.Disabled => false,
        // As the simple formatter: colour a terminal, not a pipe or a file.
        _ => !Console.IsOutputRedirected,
    };

    public void Dispose() => reload?.Dispose();
}

/// <summary>Escaping of text for line-oriented logs.</summary>
public static class LogText
{
    // C0 controls, DEL, C1 controls (U+009B is a one-character CSI on some terminals), Unicode line and paragraph
    // separators, and the bidi embeddings/overrides/isolates that can make a terminal show text in another order.
    private static readonly SearchValues<char> Unsafe = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F" +
        "\u007F\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008A\u008B\u008C\u008D\u008E\u008F" +
        "\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009A\u009B\u009C\u009D\u009E\u009F" +
        "\u2028\u2029\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069");

    /// <summary>Whether <paramref name="text"/> holds a character <see cref="Escape"/> would rewrite.</summary>
    public static bool NeedsEscaping(ReadOnlySpan<char> text) => text.ContainsAny(Unsafe);

    /// <summary><paramref name="text"/> with CR, LF, tab as <c>\r</c>, <c>\n</c>, <c>\t</c> and other control characters as <c>\uXXXX</c>.</summary>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!NeedsEscaping(text))
            return text;
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        WriteEscaped(writer, text);
        return writer.ToString();
    }

    /// <summary>Writes <paramref name="text"/> escaped as <see cref="Escape"/> does, without copying it when nothing needs escaping.</summary>
    public static void WriteEscaped(TextWriter writer, ReadOnlySpan<char> text)
    {
        ArgumentNullException.ThrowIfNull(writer);
        while (!text.IsEmpty)
        {
            var next = text.IndexOfAny(Unsafe);
            if (next < 0)
            {
                writer.Write(text);
                return;
            }
            writer.Write(text[..next]);
            switch (text[next])
            {
                case '\r': writer.Write("\\r"); break;
                case '\n': writer.Write("\\n"); break;
                case '\t': writer.Write("\\t"); break;
                default:
                    writer.Write("\\u");
                    writer.Write(((int)text[next]).ToString("x4", CultureInfo.InvariantCulture));
                    break;
            }
            text = text[(next + 1)..];
        }
    }
}

/// <summary>Registration of <see cref="SafeConsoleFormatter"/>.</summary>
public static class SafeConsoleFormatterExtensions
{
    /// <summary>
    /// Adds <see cref="SafeConsoleFormatter"/> and makes the console logger use it, unless configuration chose the
    /// JSON formatter (which escapes control characters itself). The simple and systemd formatters write user text
    /// raw, so a configured <c>simple</c> or <c>systemd</c> is replaced too.
    /// </summary>
    public static ILoggingBuilder AddSafeConsoleFormatter(this ILoggingBuilder logging)
    {
        ArgumentNullException.ThrowIfNull(logging);
        logging.AddConsoleFormatter<SafeConsoleFormatter, SafeConsoleFormatterOptions>();
        logging.Services.PostConfigure<ConsoleLoggerOptions>(o =>
        {
            if (!string.Equals(o.FormatterName, ConsoleFormatterNames.Json, StringComparison.OrdinalIgnoreCase))
                o.FormatterName = SafeConsoleFormatter.FormatterName;
        });
        return logging;
    }
}
